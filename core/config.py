"""Typed configs: dataclasses are the schema, YAML files are instances, ``key=value`` overrides on top.

Built on OmegaConf structured configs; this module only turns OmegaConf's errors into messages that name
the key, what was given, and the nearest valid key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import logging
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from rerankforge.core.errors import InputError

T = TypeVar("T")
logger = logging.getLogger(__name__)


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


def _all_keys(schema: type, prefix: str = "") -> list[str]:
    """Every dotted key of the dataclass ``schema``, nested blocks included."""
    keys = []
    for name, hint in typing.get_type_hints(schema).items():
        if name in {f.name for f in dataclasses.fields(schema)}:
            keys.append(prefix + name)
            if dataclasses.is_dataclass(_unwrap(hint)):
                keys += _all_keys(_unwrap(hint), f"{prefix}{name}.")
    return keys


def _suggest(key: str, schema: type) -> str:
    """The key meant: those anywhere in the schema whose last part is ``key``'s (``lr`` -> ``optim.lr``), else the
    one whose last part is closest (keys at the same level need less likeness), or the valid keys at that level."""
    prefix, _, leaf = key.rpartition(".")
    everywhere = _all_keys(schema)
    exact = [k for k in everywhere if k.rpartition(".")[2] == leaf and k != key]
    if exact:
        return f" Did you mean {' or '.join(repr(k) for k in exact[:3])}?"

    def likeness(candidate: str) -> float:
        last = candidate.rpartition(".")[2]
        ratio = difflib.SequenceMatcher(None, leaf, last).ratio()
        if len(leaf) >= 4 and last.startswith(leaf):  # a key's first word: warmup -> warmup_ratio
            ratio = max(ratio, 0.8)
        same_level = candidate.rpartition(".")[0] == prefix
        return ratio + 0.05 if same_level else ratio - 0.2  # elsewhere needs to be much closer

    best = max(everywhere, key=likeness, default=None)
    if best is not None and likeness(best) >= 0.55:
        return f" Did you mean '{best}'?"
    candidates = _valid_keys(schema, prefix)
    return f" Valid keys here: {', '.join(candidates)}." if candidates else ""


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


_ABSENT = object()


def _pop_dotted(data: dict, dotted: str) -> Any:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.get(part)
        if not isinstance(data, dict):
            return _ABSENT
    return data.pop(leaf, _ABSENT)


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Set ``value`` at ``dotted``; a dict already there keeps its keys, which win over ``value``'s."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    if isinstance(value, dict) and isinstance(data.get(leaf), dict):
        value = {**value, **data[leaf]}
    data[leaf] = value


def move_keys(value: Any, hint: Any, moved: list[str] | None = None, prefix: str = "") -> Any:
    """``value`` (a parsed config layer) with keys a schema has moved put where they now live.

    A dataclass lists its moves in ``MOVED: ClassVar[dict[str, str]]`` (old dotted key -> new dotted key, relative to
    it), so that config files and manifests written before a move still load. ``moved`` collects ``"old -> new"``
    for each key moved. A key whose new place lies under its old name (``first_stage`` -> ``first_stage.method``)
    moves only when its value is not already a mapping.
    """
    hint = _unwrap(hint)
    if not isinstance(value, dict) or not dataclasses.is_dataclass(hint):
        return value
    value = copy.deepcopy(value)
    for old, new in getattr(hint, "MOVED", {}).items():
        found = _pop_dotted(value, old)
        if found is _ABSENT:
            continue
        if new.startswith(old + ".") and isinstance(found, dict):
            _set_dotted(value, old, found)  # already in the new shape
            continue
        _set_dotted(value, new, found)
        if moved is not None:
            moved.append(f"{prefix}{old} -> {prefix}{new}")
    hints = typing.get_type_hints(hint)
    return {k: move_keys(v, hints.get(k), moved, f"{prefix}{k}.") for k, v in value.items()}


PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # the example configs that ship with the package
# Each command's config schema (``module:class``, imported when used): what the CLI and the API load and what the
# configuration reference documents.
COMMAND_SCHEMAS = {
    "quickstart": "rerankforge.quickstart:QuickstartConfig", "mine": "rerankforge.data_prep.config:MineConfig",
    "synth": "rerankforge.data_prep.config:SynthConfig", "train": "rerankforge.train.config:TrainConfig",
    "eval": "rerankforge.eval.config:EvalConfig", "serve": "rerankforge.serve.config:ServeConfig",
    "export": "rerankforge.models.export:ExportConfig", "push": "rerankforge.models.publish:PushConfig",
}


def packaged_config(path: str | Path) -> Path:
    """``path`` when it is a file; else the example config of that name that ships with the package, named as in a
    checkout (``configs/train/scifact-minilm.yaml``) or below ``configs/`` (``train/scifact-minilm.yaml``); else
    ``path`` as given, which ``load_config`` then reports as missing."""
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    parts = path.parts[1:] if path.parts[:1] == ("configs",) else path.parts
    shipped = PACKAGED_CONFIGS.joinpath(*parts) if parts else PACKAGED_CONFIGS
    return shipped if shipped.is_file() else path


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}. Pass an existing YAML file with --config, or one of the "
                          "example configs `rerankforge configs` lists.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}.")
    return data


def _upgrade(layer: dict, schema: type, source: str) -> dict:
    moved: list[str] = []
    layer = _restore_words(move_keys(layer, schema, moved), schema)
    if moved:
        logger.warning("%s: config keys have moved (%s); they still work, but write the new ones.", source,
                       ", ".join(moved))
    return layer


def as_overrides(values: Mapping[str, Any]) -> list[str]:
    """``{"mining.num_negatives": 5}`` -> ``["mining.num_negatives=5"]``: values written as JSON, which the
    override parser reads as YAML (strings quoted, ``None`` as null, lists and dicts inline)."""
    plain = {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}
    return [f"{key}={json.dumps(value)}" for key, value in plain.items()]


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] | Mapping[str, Any] = (),
                base: T | None = None) -> T:
    """Build a ``schema`` instance from defaults (or ``base``, an instance to start from), then the YAML at
    ``path``, then dotted ``key=value`` overrides (or a mapping of dotted keys to values).

    Raises:
        ConfigError: unknown key (with the nearest valid key), wrong type, malformed override or YAML.
    """
    if isinstance(overrides, Mapping):
        overrides = as_overrides(overrides)
    merged = OmegaConf.structured(base if base is not None else schema)
    layers: list[tuple[str, Any]] = []
    if path is not None:
        layers.append((str(path), _upgrade(_read_yaml(Path(path)), schema, str(path))))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' is not of the form key=value (e.g. mining.num_negatives=7).")
        layer = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
        layers.append((f"override '{item}'", OmegaConf.create(_upgrade(layer, schema, f"override '{item}'"))))
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
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema),
                                                   OmegaConf.create(move_keys(data, schema))))
    except OmegaConfBaseException as exc:
        raise _explain(exc, schema, "config") from None
