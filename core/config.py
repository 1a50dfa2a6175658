"""Typed configs: dataclasses are the schema, YAML files are instances, ``key=value`` overrides on top.

Built on OmegaConf structured configs; this module only turns OmegaConf's errors into messages that name
the key, what was given, and the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from rerankforge.core.errors import InputError

T = TypeVar("T")


class ConfigError(InputError, ValueError):
    """A config file or override does not fit the schema."""


def raise_problems(problems: Sequence[str]) -> None:
    """Raise one ``ConfigError`` listing every problem a config check found; nothing when there are none."""
    if problems:
        raise ConfigError("Config problems:\n" + "\n".join(f"  - {p}" for p in problems))


def _valid_keys(schema: type, dotted_prefix: str) -> list[str]:
    """Field names at ``dotted_prefix`` (e.g. ``mining``) of the dataclass ``schema``."""
    cls: Any = schema
    for part in filter(None, dotted_prefix.split(".")):
        cls = typing.get_type_hints(cls).get(part)
        if not dataclasses.is_dataclass(cls):
            return []
    return [f.name for f in dataclasses.fields(cls)]


def _suggest(key: str, schema: type) -> str:
    prefix, _, leaf = key.rpartition(".")
    candidates = _valid_keys(schema, prefix)
    close = difflib.get_close_matches(leaf, candidates, n=1, cutoff=0.5)
    if close:
        return f" Did you mean '{(prefix + '.' if prefix else '') + close[0]}'?"
    if candidates:
        return f" Valid keys here: {', '.join(candidates)}."
    return ""


def _explain(err: Exception, schema: type, source: str) -> ConfigError:
    key = getattr(err, "full_key", None) or "?"
    first_line = str(err).splitlines()[0]
    if isinstance(err, ConfigKeyError):
        return ConfigError(f"{source}: unknown config key '{key}'.{_suggest(key, schema)}")
    if isinstance(err, ValidationError):
        return ConfigError(f"{source}: bad value for '{key}': {first_line}.")
    return ConfigError(f"{source}: {first_line} (key '{key}').")


def _unwrap(hint: Any) -> Any:
    """``Optional[X]`` -> ``X``."""
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


# YAML 1.1 reads these words as booleans; a choice among strings means the word
_BOOL_WORDS = {False: ("off", "no", "false"), True: ("on", "yes", "true")}


def _restore_words(value: Any, hint: Any) -> Any:
    """``value`` (a parsed YAML layer) with booleans put back to the word they were written as (``off``, ``no``,
    ...) wherever the schema's ``hint`` expects one of a set of strings, not a boolean."""
    hint = _unwrap(hint)
    if isinstance(value, dict):
        if dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            return {k: _restore_words(v, hints.get(k)) for k, v in value.items()}
        if typing.get_origin(hint) is dict:
            return {k: _restore_words(v, typing.get_args(hint)[1]) for k, v in value.items()}
        return value
    if isinstance(value, bool) and typing.get_origin(hint) is typing.Literal:
        words = [w for w in _BOOL_WORDS[value] if w in typing.get_args(hint)]
        return words[0] if words else value
    return value


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}. Pass an existing YAML file with --config.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}.")
    return data


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` instance from defaults, then the YAML at ``path``, then dotted ``key=value`` overrides.

    Raises:
        ConfigError: unknown key (with the nearest valid key), wrong type, malformed override or YAML.
    """
    merged = OmegaConf.structured(schema)
    layers: list[tuple[str, Any]] = []
    if path is not None:
        layers.append((str(path), _restore_words(_read_yaml(Path(path)), schema)))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' is not of the form key=value (e.g. mining.num_negatives=7).")
        layer = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
        layers.append((f"override '{item}'", OmegaConf.create(_restore_words(layer, schema))))
    for source, layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as exc:
            raise _explain(exc, schema, source) from None
    try:
        return OmegaConf.to_object(merged)  # runs the dataclasses' __post_init__ checks
    except OmegaConfBaseException as exc:
        raise _explain(exc, schema, "config") from None
    except ValueError as exc:  # a __post_init__ check
        raise ConfigError(f"{path or 'config'}: {exc}") from None


def to_dict(config: Any) -> dict:
    """Plain nested dict of a config dataclass, for manifests and ``config.yaml`` files."""
    return dataclasses.asdict(config)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def from_dict(schema: type[T], data: dict) -> T:
    """A ``schema`` instance from a plain dict (e.g. the ``config`` block of a manifest), checked like a file."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(data)))
    except OmegaConfBaseException as exc:
        raise _explain(exc, schema, "config") from None
