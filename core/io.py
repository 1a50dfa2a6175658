"""Files between stages: atomic output folders, content hashes and ``manifest.json``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

MANIFEST = "manifest.json"
_VERSIONED = ("rerankforge", "torch", "transformers", "sentence-transformers", "datasets", "faiss-cpu", "bm25s",
              "openvino", "nncf")


def hash_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_path(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and bytes, in sorted order)."""
    path = Path(path)
    if path.is_file():
        return hash_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(hash_file(file).encode())
    return digest.hexdigest()


def hash_strings(items: Iterator[str] | list[str]) -> str:
    """sha256 over a sequence of strings, each length-prefixed so that ('ab','c') != ('a','bc')."""
    digest = hashlib.sha256()
    for item in items:
        data = item.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def git_commit() -> str | None:
    """The commit of the rerankforge checkout that runs, when it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON with sorted keys, so equal data gives equal bytes; atomic within its folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    """One JSON object a line, written under another name and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(scratch, path)


def write_qrels_atomic(path: Path, qrels: dict[str, dict[str, int]]) -> None:
    """BEIR qrels TSV: a header, then ``query-id  corpus-id  score`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    rows = "".join(f"{q}\t{d}\t{r}\n" for q, docs in qrels.items() for d, r in docs.items())
    scratch.write_text("query-id\tcorpus-id\tscore\n" + rows, encoding="utf-8")
    os.replace(scratch, path)


@contextlib.contextmanager
def atomic_output_dir(final: str | Path) -> Iterator[Path]:
    """Yield a scratch folder that replaces ``final`` only when the block finishes without error.

    A killed run leaves a ``.<name>.partial-<pid>`` folder beside ``final``, never a half-written ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(scratch, final)
    shutil.rmtree(old, ignore_errors=True)


def resolve_cache_dir(configured: Optional[str] = None) -> Path:
    """Where embeddings, FAISS indexes, Arrow corpora and downloaded data sets are kept: the configured
    ``cache_dir``, else ``$RERANKFORGE_CACHE``, else ``~/.cache/rerankforge``. Every stage shares it."""
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("RERANKFORGE_CACHE", Path.home() / ".cache" / "rerankforge")).expanduser()
