"""What each config key means, read from the config dataclasses themselves: the one place a key is explained.

A field's description is its trailing comment (``rrf_k: int = 60  # ...``) or the comment lines right above it.
``describe(schema)`` walks a schema's nested blocks; ``explained_yaml(config)`` prints a config as YAML with each
key's description above it (``--print-config --explain``); ``docs/`` builds its configuration reference from
``describe`` too.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import textwrap
import tokenize
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from rerankforge.core.config import COMMAND_SCHEMAS
from rerankforge.core.modules import attribute


@dataclass(frozen=True)
class KeyDoc:
    """One config key: its dotted name, type, default and description ("" when the source has none)."""

    key: str
    type: str
    default: str
    description: str


@lru_cache(maxsize=None)
def _field_comments(cls: type) -> dict[str, str]:
    """``{field name: comment}`` of a dataclass, from its source: the comment on the field's line, else the run of
    comment lines right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    names = set(cls.__dict__.get("__annotations__", {}))  # the fields this class itself declares
    comments: dict[str, str] = {}
    above: list[str] = []
    line_tokens: list[tokenize.TokenInfo] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.NL):
            _close_line(line_tokens, names, comments, above)
            line_tokens = []
        else:
            line_tokens.append(tok)
    return comments


def _close_line(tokens: list, names: set[str], comments: dict[str, str], above: list[str]) -> None:
    """Fold one logical line into ``comments``: a field line takes its trailing comment or the lines above."""
    meaningful = [t for t in tokens if t.type not in (tokenize.INDENT, tokenize.DEDENT)]
    if not meaningful:
        above.clear()
        return
    if meaningful[0].type == tokenize.COMMENT:  # a comment line: remember it for the field below
        above.append(meaningful[0].string.lstrip("#").strip())
        return
    first = meaningful[0]
    is_field = (first.type == tokenize.NAME and first.string in names and len(meaningful) > 1
                and meaningful[1].string == ":" and first.start[1] == 4)  # the class body, not a method's
    if is_field:
        trailing = [t.string.lstrip("#").strip() for t in meaningful if t.type == tokenize.COMMENT]
        comments[first.string] = " ".join(trailing) or " ".join(above)
    above.clear()


def _type_name(hint: Any) -> str:
    text = str(hint).replace("typing.", "")
    return getattr(hint, "__name__", text) if isinstance(hint, type) else text


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def describe(schema: type, prefix: str = "", instance: Any = None) -> list[KeyDoc]:
    """Every key of ``schema`` (nested blocks flattened to dotted keys, the block itself listed first), with its
    type, default (``instance``'s value where given) and description."""
    hints = typing.get_type_hints(schema)
    comments: dict[str, str] = {}
    for cls in reversed(schema.__mro__):  # a subclass's comment on a field it redeclares wins
        if dataclasses.is_dataclass(cls):
            comments.update({k: v for k, v in _field_comments(cls).items() if v or k not in comments})
    docs: list[KeyDoc] = []
    for f in dataclasses.fields(schema):
        value = getattr(instance, f.name) if instance is not None else _default(f)
        hint = hints[f.name]
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Union else hint
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            docs.append(KeyDoc(prefix + f.name, inner.__name__, "", comments.get(f.name) or _first_line(inner)))
            docs += describe(inner, f"{prefix}{f.name}.", value if dataclasses.is_dataclass(value) else None)
        else:
            shown = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            docs.append(KeyDoc(prefix + f.name, _type_name(hint), yaml.safe_dump(shown, default_flow_style=True,
                                                                                 width=10**6).strip().removesuffix(
                "...").strip(), comments.get(f.name, "")))
    return docs


def _first_line(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


def explained_yaml(config: Any) -> str:
    """``config`` as YAML, each key under its description (a ``#`` comment): ``--print-config --explain``."""
    lines: list[str] = []
    for doc in describe(type(config), instance=config):
        depth = doc.key.count(".")
        pad, name = "  " * depth, doc.key.rpartition(".")[2]
        for text in textwrap.wrap(doc.description, 116 - len(pad)):
            lines.append(f"{pad}# {text}")
        lines.append(f"{pad}{name}:" + (f" {doc.default}" if doc.default != "" or doc.type == "str" else ""))
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_markdown() -> str:
    """The configuration reference: one table per command (the quickstart's nested stage blocks point to their
    commands' tables instead of repeating them)."""
    out = ["# Configuration reference", "",
           "Every key of every command's config: its type, its default and what it does. Set a key in a YAML file "
           "(`--config`) or on the command line as a dotted override (`optim.lr=1e-4`); "
           "`rerankforge <command> --print-config --explain` prints the same descriptions beside your values. "
           "This page is generated from the config dataclasses.", ""]
    for command, name in COMMAND_SCHEMAS.items():
        schema = attribute(name)
        out += [f"## `rerankforge {command}` ({schema.__name__})", "", _first_line(schema), "",
                "| key | type | default | description |", "|---|---|---|---|"]
        for doc in describe(schema):
            if command == "quickstart" and doc.key.count(".") >= 1 and doc.key.split(".")[0] in (
                    "mine", "synth", "train", "eval"):
                continue  # the stage blocks: their own commands' tables
            out.append(f"| `{doc.key}` | `{_cell(doc.type)}` | `{_cell(doc.default)}` | {_cell(doc.description)} |")
        out.append("")
    return "\n".join(out)
