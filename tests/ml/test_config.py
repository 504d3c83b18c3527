"""TrainConfig's field metadata (what the GUI form and ``train --set`` are generated from) and
ConfigError's ``key``."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import fields

import pytest

from mriviewer.core.errors import ConfigError
from mriviewer.ml.config import (
    CHOICES,
    GROUP_NAMES,
    POSITIVE,
    RANGES,
    TrainConfig,
    parse_set_values,
)
from mriviewer.ml.config_fields import ConfigField, config_field, config_fields, settable_keys
from mriviewer.ml.presets import get_preset


# ---------------------------------------------------------------------------- metadata
def test_every_field_has_its_metadata():
    descriptors = {c.key: c for c in config_fields()}
    assert list(descriptors) == [f.name for f in fields(TrainConfig)]
    for f in fields(TrainConfig):
        assert {"label", "group", "help"} <= set(f.metadata), f.name
        c = descriptors[f.name]
        assert isinstance(c, ConfigField) and c.label.strip() and c.help.strip(), f.name
        assert c.group in GROUP_NAMES, (f.name, c.group)
        assert c.kind in (bool, int, float, str, list, dict), f.name
        if c.kind in (int, float):
            assert c.minimum is not None and c.maximum is not None, f"{f.name}: a number needs a range"
        else:
            assert c.minimum is None and c.step is None and c.unit == "", f.name
    # every group but identity has editable keys; the identity keys are not offered to --set
    for group in GROUP_NAMES[1:]:
        assert config_fields(group), group
    assert {c.key for c in config_fields(GROUP_NAMES[0])} == {"preset", "preset_version", "overrides"}
    assert settable_keys() == [f.name for f in fields(TrainConfig)
                               if f.name not in ("preset", "preset_version", "overrides")]


def test_ranges_and_choices_are_consistent_with_the_defaults():
    defaults = TrainConfig()
    for c in config_fields():
        assert c.default == getattr(defaults, c.key), c.key
        if c.minimum is not None:
            assert c.minimum < c.maximum and c.minimum <= c.default <= c.maximum, c.key
            if c.kind is int:
                assert float(c.minimum).is_integer() and float(c.maximum).is_integer(), c.key
        if c.step is not None:
            assert 0 < c.step <= c.maximum - c.minimum, c.key
            assert c.kind is float or float(c.step).is_integer(), c.key
        if c.log_step:
            assert c.kind is float and c.minimum >= 0, c.key
        if c.choices:
            assert c.kind is str and c.default in c.choices and len(set(c.choices)) == len(c.choices), c.key
        if c.suggestions:
            assert c.default in c.suggestions, c.key
        if c.when is not None:
            key, allowed = c.when
            other = config_field(key)
            assert other.key != c.key
            assert allowed == POSITIVE and other.kind in (int, float) or set(allowed) <= set(other.choices), c.key
    # the tables validate() uses are the metadata's
    assert CHOICES == {c.key: c.choices for c in config_fields() if c.choices}
    assert RANGES == {c.key: (c.minimum, c.maximum) for c in config_fields() if c.minimum is not None}
    assert TrainConfig().validate() == TrainConfig()


def test_defaults_are_fresh_copies_and_round_trip():
    a = TrainConfig()
    a.augment["flip_lr"] = 0.1
    a.split.append(0.0)
    assert TrainConfig().augment == {"flip_lr": 0.5} and TrainConfig().split == [0.7, 0.15, 0.15]
    assert config_field("augment").default == {"flip_lr": 0.5}
    cfg = TrainConfig(model="cnn3d", epochs=3)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_when_a_field_applies():
    assert not config_field("momentum").applies({"optimizer": "adam"})
    assert config_field("momentum").applies({"optimizer": "sgd"})
    assert not config_field("gamma").applies({})  # the default scheduler is none
    assert config_field("gamma").applies({"scheduler": "plateau"})
    assert config_field("depth").applies({"model": "cnn3d"}) and not config_field("depth").applies({})
    assert config_field("slices_per_case").applies({}) and not config_field("color").applies({"model": "r3d-18"})
    assert not config_field("finetune_lr").applies({"finetune_epochs": 0})
    assert config_field("finetune_lr").applies({"finetune_epochs": 2})
    assert config_field("epochs").applies({})


def test_descriptions_for_the_command_line():
    text = config_field("image_size").describe()
    assert text.startswith("image_size (int, 16 … 1024 px): ")
    assert "adam|adamw|sgd" in config_field("optimizer").describe()
    with pytest.raises(ConfigError) as err:
        config_field("learning_rate")
    assert err.value.key == "learning_rate"


def test_train_set_help_lists_the_keys():
    from mriviewer.cli.parser import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    (action,) = [a for a in train._actions if "--set" in a.option_strings]
    for key in settable_keys():
        assert key in action.help, key
    assert "preset_version" not in action.help


# ---------------------------------------------------------------------------- ConfigError.key
@pytest.mark.parametrize("bad,key", [
    ({"image_size": 100000}, "image_size"), ({"image_size": "abc"}, "image_size"), ({"model": "vgg"}, "model"),
    ({"split": [0.5, 0.5, 0.1]}, "split"), ({"split": [0.98, 0.01, 0.01]}, "split"), ({"lr": -1.0}, "lr"),
    ({"lr": math.inf}, "lr"), ({"augment": {"twist": 1}}, "augment"), ({"augment": {"flip_lr": 2}}, "augment.flip_lr"),
    ({"augment": {"scale": [2, 1]}}, "augment.scale"), ({"folds": 1}, "folds"), ({"slice_range": [0.6, 0.4]}, "slice_range"),
    ({"epochs": True}, "epochs"), ({"modalities": [1]}, "modalities"), ({"modalities": list("abcdefghi")}, "modalities"),
    ({"device": "tpu"}, "device"), ({"modality_fallback": {"T1wCE": "T1w"}}, "modality_fallback.T1wCE"),
    ({"per_modality": 1}, "per_modality"),
])
def test_config_error_names_the_key(bad, key):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(bad)
    assert err.value.key == key
    assert key.split(".")[0] in str(err.value)  # the message still names it too


def test_config_error_key_from_overrides_presets_and_files(tmp_path):
    with pytest.raises(ConfigError) as err:
        TrainConfig().with_overrides({"learning_rate": 1})
    assert err.value.key == "learning_rate"
    with pytest.raises(ConfigError) as err:
        TrainConfig().with_overrides({"epochs.x": 1})
    assert err.value.key == "epochs.x"
    with pytest.raises(ConfigError) as err:
        get_preset("mgmt-resnet18-2d").config({"batch_size": 0})
    assert err.value.key == "batch_size"
    with pytest.raises(ConfigError) as err:
        get_preset("no-such-preset")
    assert err.value.key == "preset"
    with pytest.raises(ConfigError) as err:
        parse_set_values(["lr"])
    assert err.value.key == "lr"
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 0}))
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(path)
    assert err.value.key == "epochs" and str(path) in str(err.value)
    path.write_text("{not json")
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(path)
    assert err.value.key is None
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict([1, 2])
    assert err.value.key is None


def test_config_error_keeps_its_key_through_pickle():
    err = pickle.loads(pickle.dumps(ConfigError("lr must be between 1e-09 and 1, got -1.0", key="lr")))
    assert err.key == "lr" and str(err) == "lr must be between 1e-09 and 1, got -1.0"
    assert ConfigError("no key").key is None
