"""Classifier networks of mriviewer.ml.models: shapes, Grad-CAM layers, partial pretrained loading,
stem adaptation, heads, freezing (CPU, tiny inputs, weight files made from random weights)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mriviewer.core.errors import CheckpointError, ConfigError
from mriviewer.ml.config import MODEL_NAMES, is_3d_model
from mriviewer.ml.models.build import build_model, freeze, keep_frozen_bn_eval
from mriviewer.ml.models.heads import DropoutLinear
from mriviewer.ml.models.registry import (
    MODEL_INFO,
    cam_layer_candidates,
    head_module_names,
    hub_weights_path,
    target_layer_name,
)

TV_MODELS = [n for n in MODEL_NAMES if n != "cnn3d"]
STEM = {"resnet18-2d": "conv1", "efficientnet-b0-2d": "features.0.0", "r3d-18": "stem.0",
        "mc3-18": "stem.0", "r2plus1d-18": "stem.0"}
# A tensor in the middle of each backbone, which pretrained loading must copy as it is.
MIDDLE = {"resnet18-2d": "layer2.0.conv1.weight", "efficientnet-b0-2d": "features.4.0.block.0.0.weight",
          "r3d-18": "layer2.0.conv1.0.weight", "mc3-18": "layer3.0.conv1.0.weight",
          "r2plus1d-18": "layer2.0.conv1.0.0.weight"}


def _input(name: str, channels: int, batch: int = 2, size: int = 32) -> torch.Tensor:
    shape = (batch, channels, 8, size, size) if is_3d_model(name) else (batch, channels, size, size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def _torchvision(name: str) -> nn.Module:
    from torchvision import models
    from torchvision.models import video

    factory = {"resnet18-2d": models.resnet18, "efficientnet-b0-2d": models.efficientnet_b0,
               "r3d-18": video.r3d_18, "mc3-18": video.mc3_18, "r2plus1d-18": video.r2plus1d_18}
    return factory[name](weights=None)


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, tuple[str, dict]]:
    """Per torchvision model: a saved state dict of randomly initialised RGB weights."""
    out = tmp_path_factory.mktemp("weights")
    files = {}
    torch.manual_seed(0)
    for name in TV_MODELS:
        state = _torchvision(name).state_dict()
        path = out / f"{name}.pth"
        torch.save(state, path)
        files[name] = (str(path), state)
    return files


# ------------------------------------------------------------------ shapes


SHAPE_CASES = [
    (name, c, k)
    for name in MODEL_NAMES
    for c, k in [(1, 1), (1, 2), (1, 44), (4, 1), (4, 2), (4, 44), (3, 2)]
]


@pytest.mark.parametrize("name,channels,classes", SHAPE_CASES)
def test_forward_shape(name, channels, classes):
    model, msg = build_model(name, channels, classes, pretrained="none")
    assert msg == "Pretrained weights off; training starts from random weights."
    model.eval()
    with torch.no_grad():
        out = model(_input(name, channels))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()


def test_model_tables_cover_every_model():
    assert set(MODEL_INFO) == set(MODEL_NAMES)
    assert all(MODEL_INFO[n].strip() for n in MODEL_NAMES)
    assert head_module_names("resnet18-2d") == ("fc",)
    assert head_module_names("efficientnet-b0-2d") == ("classifier",)
    assert head_module_names("cnn3d") == ("classifier",)
    assert all(head_module_names(n) == ("fc",) for n in ("r3d-18", "mc3-18", "r2plus1d-18"))
    assert hub_weights_path("cnn3d") is None


# ------------------------------------------------------------------ Grad-CAM


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradcam_layer_gives_a_map_of_the_input_shape(name):
    from monai.visualize import GradCAM

    torch.manual_seed(1)
    model, _ = build_model(name, 2, 2, pretrained="none")
    model.eval()
    model.get_submodule(target_layer_name(name))  # exists
    x = _input(name, 2, batch=1, size=64 if not is_3d_model(name) else 32)
    cam = GradCAM(nn_module=model, target_layers=target_layer_name(name))(x)
    assert tuple(cam.shape) == (1, 1, *x.shape[2:])
    assert torch.isfinite(cam).all()
    assert float(cam.max() - cam.min()) > 0


# Input (C, H, W) or (C, D, H, W) → layer Predictor.cam_layer reads: the presets' sizes keep the last
# block; CI-sized inputs fall back to a stage with ≥ 7 cells (or ≤ 4-sample cells) on every axis.
CAM_LAYERS = [
    ("resnet18-2d", (1, 224, 224), "layer4"), ("resnet18-2d", (1, 128, 128), "layer3"),
    ("efficientnet-b0-2d", (1, 300, 300), "features.8"), ("efficientnet-b0-2d", (1, 64, 64), "features.3"),
    ("cnn3d", (1, 32, 128, 128), "features.1"), ("cnn3d", (1, 16, 32, 32), "features.1"),
    ("r3d-18", (1, 64, 112, 112), "layer4"), ("r3d-18", (1, 16, 32, 32), "layer2"),
    ("mc3-18", (1, 16, 32, 32), "layer2"),
    ("r2plus1d-18", (1, 64, 112, 112), "layer4"), ("r2plus1d-18", (1, 16, 32, 32), "layer2"),
    ("r3d-18", (1, 4, 32, 32), "layer2"),  # a 4-slice stack: depth 1 cell from layer3 on
]


@pytest.mark.parametrize("name,shape,layer", CAM_LAYERS)
def test_cam_layer_is_fine_enough_along_every_axis(name, shape, layer):
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.predict import Predictor

    assert cam_layer_candidates(name)[0] == target_layer_name(name)
    model, _ = build_model(name, 1, 2, pretrained="none")
    pred = Predictor(model, TrainConfig(model=name), ["a", "b"], {}, device="cpu")
    assert pred.cam_layer(shape) == layer


# ------------------------------------------------------------------ pretrained loading


@pytest.mark.parametrize("name", TV_MODELS)
def test_partial_load_copies_backbone_and_names_layers(name, weight_files):
    path, state = weight_files[name]
    model, msg = build_model(name, 2, 2, pretrained=path)
    own = model.state_dict()
    torch.testing.assert_close(own[MIDDLE[name]], state[MIDDLE[name]])
    assert msg.startswith(f"Pretrained weights loaded from {path}: ")
    head = head_module_names(name)[0]
    assert f"{STEM[name]} adapted from the RGB mean" in msg
    assert f"not loaded: {head} (new head, 2 outputs)" in msg
    if name == "efficientnet-b0-2d":
        assert "features.1–features.8" in msg
    else:
        assert "layer1–layer4" in msg
    n_loaded, n_total = (int(v) for v in msg.split(": ", 1)[1].split(" tensors")[0].split(" of "))
    assert n_total == len(own) and n_loaded == len(own) - 2  # all but the head's weight and bias


@pytest.mark.parametrize("name", TV_MODELS)
def test_stem_adapt_equals_rgb_replication(name, weight_files):
    path, state = weight_files[name]
    head = head_module_names(name)[0]
    rgb, _ = build_model(name, 3, 2, pretrained=path)
    torch.testing.assert_close(rgb.get_submodule(STEM[name]).weight, state[f"{STEM[name]}.weight"])
    x1 = _input(name, 1, batch=1)
    reps = (1, 3) + (1,) * (x1.dim() - 2)
    with torch.no_grad():
        for c in (1, 4) if name == "resnet18-2d" else (1,):
            grey, _ = build_model(name, c, 2, pretrained=path)
            expected = state[f"{STEM[name]}.weight"].mean(1, keepdim=True) * (3 / c)
            stem_w = grey.get_submodule(STEM[name]).weight
            torch.testing.assert_close(stem_w, expected.repeat_interleave(c, dim=1))
            grey.get_submodule(head).load_state_dict(rgb.get_submodule(head).state_dict())
            grey.eval()
            rgb.eval()
            xc = x1.repeat((1, c) + (1,) * (x1.dim() - 2))
            torch.testing.assert_close(grey(xc), rgb(x1.repeat(reps)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18-2d", "r2plus1d-18"])
def test_stem_random_keeps_the_stem_random(name, weight_files):
    path, state = weight_files[name]
    model, msg = build_model(name, 3, 2, pretrained=path, stem="random")
    own = model.state_dict()
    stem_key = f"{STEM[name]}.weight"
    assert own[stem_key].shape == state[stem_key].shape
    assert not torch.allclose(own[stem_key], state[stem_key])
    for key, value in state.items():
        if not key.startswith((STEM[name] + ".", "fc.")):
            torch.testing.assert_close(own[key], value, msg=key)
    assert f"not loaded: {STEM[name]} (random stem, stem='random')" in msg
    if name == "r2plus1d-18":  # the second stem conv does not see the input channels: loaded
        torch.testing.assert_close(own["stem.3.weight"], state["stem.3.weight"])


def test_mriviewer_checkpoint_and_state_dict_wrappers_load(tmp_path):
    torch.manual_seed(2)
    src, _ = build_model("cnn3d", 2, 3, pretrained="none")
    ckpt = {"format": "mriviewer-checkpoint", "config": {"model": "cnn3d"}, "class_names": ["a", "b", "c"],
            "model_state": src.state_dict()}
    torch.save(ckpt, tmp_path / "best.pt")
    model, msg = build_model("cnn3d", 2, 3, pretrained=str(tmp_path / "best.pt"))
    for key, value in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)
    assert "loaded from" in msg and "not loaded" not in msg
    torch.save({"state_dict": src.state_dict()}, tmp_path / "sd.pt")
    _, msg = build_model("cnn3d", 2, 3, pretrained=str(tmp_path / "sd.pt"))
    assert "loaded from" in msg


def test_hub_auto(monkeypatch, tmp_path, weight_files):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    path = hub_weights_path("resnet18-2d")
    assert path.parent == tmp_path / "checkpoints" and path.name.startswith("resnet18-")
    _, msg = build_model("resnet18-2d", 1, 2, pretrained="auto")
    assert msg == (f"No pretrained weights in {path}; training starts from random weights "
                   "(put torchvision's file there or pass a weights file).")
    path.parent.mkdir()
    path.write_bytes(open(weight_files["resnet18-2d"][0], "rb").read())
    _, msg = build_model("resnet18-2d", 1, 2, pretrained="auto")
    assert msg.startswith(f"Pretrained weights loaded from {path}")
    _, msg = build_model("cnn3d", 1, 2, pretrained="auto")
    assert "cnn3d has no pretrained weights" in msg and "random weights" in msg


# ------------------------------------------------------------------ errors


def test_bad_names_raise_config_error():
    for call in (lambda: build_model("vgg16", 1, 2, "none"), lambda: target_layer_name("vgg16"),
                 lambda: hub_weights_path("vgg16"), lambda: head_module_names("vgg16"),
                 lambda: build_model("cnn3d", 1, 2, "none", stem="zero"),
                 lambda: build_model("cnn3d", 1, 2, "none", head="mlp64"),
                 lambda: build_model("cnn3d", 0, 2, "none"),
                 lambda: build_model("cnn3d", 1, 0, "none")):
        with pytest.raises(ConfigError):
            call()
    model, _ = build_model("cnn3d", 1, 2, "none")
    with pytest.raises(ConfigError):
        freeze(model, "cnn3d", "everything")


def test_bad_weight_files_raise_checkpoint_error(tmp_path, weight_files):
    missing = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match="nope.pth"):
        build_model("resnet18-2d", 1, 2, pretrained=str(missing))
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="junk.pth"):
        build_model("resnet18-2d", 1, 2, pretrained=str(tmp_path / "junk.pth"))
    with pytest.raises(CheckpointError, match="r3d-18"):  # ResNet weights for a video net
        build_model("r3d-18", 1, 2, pretrained=weight_files["resnet18-2d"][0])


# ------------------------------------------------------------------ heads


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_mlp32_head(name):
    model, _ = build_model(name, 1, 3, pretrained="none", head="mlp32")
    head = model.get_submodule(head_module_names(name)[0])
    kinds = [type(m) for m in head]
    assert kinds == [nn.BatchNorm1d, nn.Dropout, nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout, nn.Linear]
    assert head[2].out_features == 32 and head[6].in_features == 32 and head[6].out_features == 3
    assert head[0].num_features == head[2].in_features
    assert head[1].p == head[5].p == 0.4
    model.train()
    assert model(_input(name, 1)).shape == (2, 3)
    model, _ = build_model(name, 1, 3, pretrained="none", head="mlp32", dropout=0.25)
    assert model.get_submodule(head_module_names(name)[0])[1].p == 0.25


@pytest.mark.parametrize("name", ["resnet18-2d", "efficientnet-b0-2d", "r3d-18"])
def test_linear_head_dropout(name):
    plain, _ = build_model(name, 1, 2, pretrained="none")
    dropped, _ = build_model(name, 1, 2, pretrained="none", dropout=0.5)
    head = head_module_names(name)[0]
    assert isinstance(plain.get_submodule(head), DropoutLinear)
    assert plain.get_submodule(head).p == 0 and dropped.get_submodule(head).p == 0.5
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # checkpoints interchange


def test_cnn3d_structure():
    model, _ = build_model("cnn3d", 2, 1, pretrained="none")
    convs = [model.features[i][0] for i in (0, 1)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (2, 64, (3, 3, 3), (1, 1, 1)), (64, 128, (3, 3, 3), (1, 1, 1))]
    assert [type(m) for m in model.features[1]] == [nn.Conv3d, nn.BatchNorm3d, nn.LeakyReLU, nn.MaxPool3d]
    assert [type(m) for m in model.classifier] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert model.classifier[0].in_features == 128 and model.classifier[0].out_features == 256
    assert model.classifier[2].p == 0.3
    model, _ = build_model("cnn3d", 2, 1, pretrained="none", dropout=0.5)
    assert model.classifier[2].p == 0.5


# ------------------------------------------------------------------ freezing


def _trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_freeze_modes():
    model, _ = build_model("resnet18-2d", 1, 2, pretrained="none", head="mlp32")
    everything = {n for n, _ in model.named_parameters()}
    bn = {f"{m}.{p}" for m, mod in model.named_modules()
          if isinstance(mod, nn.modules.batchnorm._BatchNorm) for p in ("weight", "bias")}
    freeze(model, "resnet18-2d", "backbone")
    assert _trainable(model) == {n for n in everything if n.startswith("fc.")}
    freeze(model, "resnet18-2d", "batchnorm")
    assert _trainable(model) == everything - bn and "fc.0.weight" in bn
    n = freeze(model, "resnet18-2d", "none")
    assert _trainable(model) == everything
    assert n == sum(p.numel() for p in model.parameters())


def test_keep_frozen_bn_eval_freezes_running_stats():
    torch.manual_seed(3)
    model, _ = build_model("cnn3d", 1, 2, pretrained="none", head="mlp32")
    freeze(model, "cnn3d", "backbone")  # backbone BN frozen; the head's BatchNorm1d trains
    model.train()
    assert keep_frozen_bn_eval(model) == 2
    frozen_bn, head_bn = model.features[0][1], model.classifier[0]
    assert not frozen_bn.training and head_bn.training
    before = frozen_bn.running_mean.clone(), head_bn.running_mean.clone()
    frozen_w = model.features[0][0].weight.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(_input("cnn3d", 1, batch=4) + 1.0), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    opt.step()
    torch.testing.assert_close(frozen_bn.running_mean, before[0])
    assert not torch.allclose(head_bn.running_mean, before[1])
    torch.testing.assert_close(model.features[0][0].weight, frozen_w)

    freeze(model, "cnn3d", "none")
    model.train()
    assert keep_frozen_bn_eval(model) == 0
    before = frozen_bn.running_mean.clone()
    model(_input("cnn3d", 1, batch=4) + 1.0)
    assert not torch.allclose(frozen_bn.running_mean, before)
