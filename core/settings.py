"""Settings: one YAML file, one schema, one defaults file; validated at load, errors name the key.

Layering (as The Littlest JupyterHub does): the defaults in ``settings.defaults.yaml`` are
deep-merged with the admin's file (mappings merged key by key, lists and scalars replaced), and the
result is validated against ``settings.schema.json``, which also documents every key. Code never
mutates settings after load.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from atelier.errors import SettingsError

#: Where ``atelier`` looks for settings unless told otherwise (``--settings``,
#: ``ATELIER_SETTINGS``).
DEFAULT_SETTINGS_PATH = os.environ.get("ATELIER_SETTINGS", "/etc/atelier/settings.yaml")


def schema() -> dict:
    """The settings schema (JSON Schema draft 2020-12), with a description for every key."""
    text = resources.files("atelier").joinpath("settings.schema.json").read_text("utf-8")
    return json.loads(text)


def defaults() -> dict:
    """The default settings, as shipped in ``settings.defaults.yaml``."""
    text = resources.files("atelier").joinpath("settings.defaults.yaml").read_text("utf-8")
    return yaml.safe_load(text) or {}


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Return ``base`` with ``override`` merged in: mappings key by key, the rest replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _key_path(error) -> str:
    """Dotted path of the key a jsonschema error is about, including an unknown key's own name."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = set(error.instance) - set(error.schema.get("properties", {}))
        pattern = error.schema.get("patternProperties")
        if pattern:
            import re

            extra = {k for k in extra if not any(re.search(p, k) for p in pattern)}
        if extra:
            parts.append(sorted(extra)[0])
    return ".".join(parts) or "(top level)"


def validate(data: Mapping, source: str = "settings") -> None:
    """Raise :class:`SettingsError` listing every key of ``data`` that the schema rejects."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = []
    for error in errors:
        key = _key_path(error)
        if error.validator == "additionalProperties":
            lines.append(f"{source}: unknown key '{key}' — remove it or check its spelling")
        else:
            lines.append(f"{source}: key '{key}': {error.message}")
    raise SettingsError("\n".join(lines))


class Settings(dict):
    """Validated settings: a read-only view of nested mappings with dotted-path lookup."""

    def get_path(self, dotted: str, default: Any = None) -> Any:
        """Return the value at ``dotted`` (for example ``"hub.port"``), or ``default``."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def load_settings(
    path: str | os.PathLike | None = None, overrides: Mapping | None = None
) -> Settings:
    """Load the settings file at ``path`` over the defaults, apply ``overrides``, and validate.

    A missing file at the default location means "all defaults"; a missing file that was named
    explicitly is an error, since the admin meant something by it.
    """
    data: dict = {}
    source = str(path) if path else "settings"
    if path:
        p = Path(path)
        if p.exists():
            try:
                loaded = yaml.safe_load(p.read_text("utf-8"))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" line {mark.line + 1}" if mark else ""
                raise SettingsError(f"{p}:{where} is not valid YAML: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise SettingsError(f"{p}: is not UTF-8 text ({exc.reason})") from exc
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, Mapping):
                raise SettingsError(f"{p}: must be a mapping of sections (hub:, accounts:, ...)")
            data = dict(loaded)
        elif str(path) != DEFAULT_SETTINGS_PATH:
            raise SettingsError(f"{p}: settings file not found")
    merged = deep_merge(defaults(), data)
    if overrides:
        merged = deep_merge(merged, overrides)
    validate(merged, source)
    return Settings(merged)
