"""The :class:`~mriviewer.ml.config.TrainConfig` fields as typed descriptors, read from each
field's ``dataclasses.field`` metadata: what the GUI generates its form from (label, group,
help, range, step, choices, unit, when a field applies) and what ``mriviewer train --set`` lists.
Qt-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from mriviewer.core.errors import ConfigError
from mriviewer.ml.config import GROUP_NAMES, POSITIVE, TrainConfig, _default, _is_number

__all__ = ["ConfigField", "config_fields", "config_field", "settable_keys", "GROUP_NAMES", "POSITIVE"]


@dataclass(frozen=True)
class ConfigField:
    """One :class:`~mriviewer.ml.config.TrainConfig` key as the form and the command line describe it.

    Attributes:
        key: the field's name (``--set key=…``).
        kind: its type: ``bool``, ``int``, ``float``, ``str``, ``list`` or ``dict``.
        default: the default value (a fresh copy for lists and dicts).
        label: a short name for the form.
        group: one of :data:`~mriviewer.ml.config.GROUP_NAMES`.
        help: what the value means, one or two sentences.
        minimum, maximum: the inclusive range of a number (``None``: not a bounded number).
        step: the arrow keys' step of a number (``None``: 1).
        log_step: a float whose arrows step within its decade (1e-4 → 2e-4; from 0: ``step``).
        choices: the allowed values of a string option (empty: free).
        suggestions: values offered for a free string (``device``).
        unit: the number's unit (``"px"``, ``"mm"``, ``"epochs"``) or ``""``.
        when: ``(key, allowed)``: the field applies only while ``key``'s value is in ``allowed``
            (or, for :data:`~mriviewer.ml.config.POSITIVE`, above 0); ``None``: always.
        browse: a file-dialog filter for a path value (``"Weights (*.pt *.pth)"``) or ``""``.
        note: a line (HTML) shown under the editor, or ``""``.
    """

    key: str
    kind: type
    default: Any
    label: str
    group: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    log_step: bool = False
    choices: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    unit: str = ""
    when: tuple[str, Any] | None = None
    browse: str = ""
    note: str = ""

    @property
    def editable(self) -> bool:
        """Whether the user sets this key (the identity keys are recorded, not edited)."""
        return self.group != GROUP_NAMES[0]

    def applies(self, values: Mapping) -> bool:
        """Whether the field is used under ``values`` (``{key: value}``; a missing key counts
        as its default), e.g. ``momentum`` only with ``optimizer`` ``"sgd"``."""
        if self.when is None:
            return True
        key, allowed = self.when
        v = values[key] if key in values else config_field(key).default
        if allowed == POSITIVE:
            return _is_number(v) and v > 0
        return v in allowed

    def describe(self) -> str:
        """One line of plain text: ``"lr (float, 1e-09 … 1): The optimiser's learning rate …"``."""
        what = [self.kind.__name__]
        if self.choices:
            what.append("|".join(self.choices))
        if self.minimum is not None:
            what.append(f"{self.minimum:g} … {self.maximum:g}" + (f" {self.unit}" if self.unit else ""))
        return f"{self.key} ({', '.join(what)}): {self.help}"


def config_fields(group: str | None = None) -> list[ConfigField]:
    """Every :class:`TrainConfig` field's descriptor in declaration order (only ``group``'s
    when given)."""
    out = []
    for f in fields(TrainConfig):
        m = f.metadata
        lo, hi = m.get("range", (None, None))
        out.append(ConfigField(
            key=f.name, kind=type(_default(f)), default=_default(f), label=m["label"], group=m["group"],
            help=m["help"], minimum=lo, maximum=hi, step=m.get("step"), log_step=bool(m.get("log_step")),
            choices=m.get("choices", ()), suggestions=m.get("suggestions", ()), unit=m.get("unit", ""),
            when=m.get("when"), browse=m.get("browse", ""), note=m.get("note", "")))
    return [c for c in out if group is None or c.group == group]


def config_field(key: str) -> ConfigField:
    """The descriptor of ``key``.

    Raises:
        ConfigError: no such key (naming it).
    """
    for c in config_fields():
        if c.key == key:
            return c
    raise ConfigError(f"{key}: unknown key", key=key)


def settable_keys() -> list[str]:
    """The keys ``--set`` accepts (every field but the identity ones), in declaration order."""
    return [c.key for c in config_fields() if c.editable]

