"""The papers' pipelines as named, versioned presets (JSON files shipped in the package).

A preset file ``mriviewer/ml/presets/<name>.json`` holds ``name``, ``version``, ``task``,
``paper``, ``summary`` (one line), ``notes`` (where a value is ours rather than the paper's) and
``config`` (a partial :class:`~.config.TrainConfig`; unset keys keep the defaults). A run's
``config.json`` records the preset, its version and every ``--set`` override.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

from mriviewer.core.errors import ConfigError
from mriviewer.ml.config import TrainConfig

__all__ = ["Preset", "list_presets", "get_preset", "config_from_preset"]


@dataclass(frozen=True)
class Preset:
    """One preset: identity, provenance and the config values it sets."""

    name: str
    version: int
    task: str
    paper: str
    summary: str
    notes: tuple[str, ...] = ()
    values: dict = field(default_factory=dict)

    def config(self, overrides: dict | None = None) -> TrainConfig:
        """The preset's :class:`TrainConfig` with ``overrides`` applied and recorded.

        Raises:
            ConfigError: an override names an unknown key or a bad value.
        """
        base = TrainConfig.from_dict({**self.values, "preset": self.name, "preset_version": self.version})
        return base.with_overrides(overrides) if overrides else base

    def describe(self) -> dict:
        """The preset as plain JSON-able values (``mriviewer presets --json``)."""
        return {"name": self.name, "version": self.version, "task": self.task, "paper": self.paper,
                "summary": self.summary, "notes": list(self.notes), "config": dict(self.values)}


def _read(text: str, origin: str) -> Preset:
    try:
        d = json.loads(text)
        preset = Preset(str(d["name"]), int(d["version"]), str(d["task"]), str(d["paper"]),
                        str(d["summary"]), tuple(d.get("notes", ())), dict(d["config"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"preset {origin}: invalid ({exc})") from exc
    preset.config()  # validate the values now, not at training time (a ConfigError naming the key)
    return preset


_CACHE: dict[str, Preset] | None = None


def list_presets() -> list[Preset]:
    """Every shipped preset, sorted by name.

    Raises:
        ConfigError: a shipped preset file is invalid (a packaging bug).
    """
    global _CACHE
    if _CACHE is None:
        folder = resources.files("mriviewer.ml") / "presets"
        found = {}
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".json"):
                p = _read(entry.read_text(encoding="utf-8"), entry.name)
                found[p.name] = p
        _CACHE = found
    return list(_CACHE.values())


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ConfigError: no such preset (the message lists them).
    """
    for p in list_presets():
        if p.name == name:
            return p
    raise ConfigError(f"unknown preset {name!r}; available: {', '.join(p.name for p in list_presets())}",
                      key="preset")


def config_from_preset(name: str, overrides: dict | None = None) -> TrainConfig:
    """Shorthand for ``get_preset(name).config(overrides)``."""
    return get_preset(name).config(overrides)
