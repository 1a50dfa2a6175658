"""Find a BEIR data set on disk, or download it once from the public BEIR distribution (checksummed)."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from rerankforge.core.errors import InputError
from rerankforge.core.io import resolve_cache_dir

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


@dataclass(frozen=True)
class Archive:
    md5: str  # published in BEIR's README
    sha256: Optional[str] = None


ARCHIVES = {"scifact": Archive("5f7d1de60b170fc8027bb7898e2efca1",
                               "536e14446a0ba56ed1398ab1055f39fe852686ecad24a6306c80c490fa8e0165")}


class DatasetNotFoundError(InputError, FileNotFoundError):
    """No local copy of a data set and no way to download it."""


def _is_beir(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file()


def _download(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {url.rsplit('/', 1)[-1]}") as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


def _check(path: Path, archive: Archive) -> None:
    digests = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            for d in digests.values():
                d.update(chunk)
    if digests["md5"].hexdigest() != archive.md5 or (archive.sha256 and digests["sha256"].hexdigest() != archive.sha256):
        raise OSError(f"{path.name}: checksum mismatch (md5 {digests['md5'].hexdigest()}, expected {archive.md5}); "
                      "the download is corrupt or the file changed upstream. Delete it and retry.")


def resolve_dataset(name: str, explicit: Optional[str] = None, cache_dir: Optional[Path] = None) -> Path:
    """The BEIR folder of ``name``: ``explicit`` path → ``$RERANKFORGE_DATA_DIR/<name>`` → the download cache →
    a fresh, checksummed download from the BEIR distribution.

    Raises:
        DatasetNotFoundError: a given path lacks corpus.jsonl/queries.jsonl, or nothing is on disk and the
            download failed (the message names ``--data`` and ``RERANKFORGE_DATA_DIR``).
    """
    if explicit:
        folder = Path(explicit).expanduser()
        if not _is_beir(folder):
            raise DatasetNotFoundError(f"--data {explicit}: expected a BEIR folder with corpus.jsonl, queries.jsonl and "
                                       "qrels/<split>.tsv.")
        return folder
    env = os.environ.get("RERANKFORGE_DATA_DIR")
    if env and _is_beir(Path(env).expanduser() / name):
        return Path(env).expanduser() / name
    cache = (cache_dir or resolve_cache_dir()) / "datasets"
    if _is_beir(cache / name):
        return cache / name
    if name not in ARCHIVES:
        raise DatasetNotFoundError(f"Unknown data set '{name}' and no local copy: pass --data PATH.")
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f".{name}.zip.partial"
    try:
        _download(BEIR_URL.format(name=name), archive)
    except OSError as exc:
        archive.unlink(missing_ok=True)
        looked = f"$RERANKFORGE_DATA_DIR/{name} ({env or 'RERANKFORGE_DATA_DIR is not set'}), {cache / name}"
        raise DatasetNotFoundError(
            f"Could not download {name} from {BEIR_URL.format(name=name)} ({exc}). No local copy either (looked in "
            f"{looked}). Fix: pass --data /path/to/{name} (a BEIR folder), or set RERANKFORGE_DATA_DIR to the folder "
            f"that contains {name}/.") from None
    _check(archive, ARCHIVES[name])
    scratch = cache / f".{name}.unzip"
    shutil.rmtree(scratch, ignore_errors=True)
    with zipfile.ZipFile(archive) as z:
        z.extractall(scratch)
    shutil.rmtree(cache / name, ignore_errors=True)
    os.replace(scratch / name, cache / name)
    shutil.rmtree(scratch, ignore_errors=True)
    archive.unlink()
    return cache / name
