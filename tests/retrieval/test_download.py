"""Finding a BEIR data set: explicit path, $RERANKFORGE_DATA_DIR, the download cache, or a checksummed download."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

import rerankforge.retrieval.download as download
from rerankforge.retrieval.download import Archive, DatasetNotFoundError, resolve_dataset


def zipped_beir(beir_dir, tmp_path, name="tinyset"):
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as z:
        for file in beir_dir.rglob("*"):
            if file.is_file():
                z.write(file, f"{name}/{file.relative_to(beir_dir)}")
    return path


def test_explicit_path_then_env_var(beir_dir, tmp_path, monkeypatch):
    assert resolve_dataset("scifact", str(beir_dir)) == beir_dir
    with pytest.raises(DatasetNotFoundError, match="expected a BEIR folder with corpus.jsonl"):
        resolve_dataset("scifact", str(tmp_path))
    (tmp_path / "data").mkdir()
    beir_dir.rename(tmp_path / "data" / "scifact")
    monkeypatch.setenv("RERANKFORGE_DATA_DIR", str(tmp_path / "data"))
    assert resolve_dataset("scifact", cache_dir=tmp_path / "cache") == tmp_path / "data" / "scifact"


def test_download_is_checked_extracted_and_cached(beir_dir, tmp_path, monkeypatch):
    archive = zipped_beir(beir_dir, tmp_path)
    data = archive.read_bytes()
    monkeypatch.delenv("RERANKFORGE_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "BEIR_URL", archive.parent.as_uri() + "/{name}.zip")
    monkeypatch.setitem(download.ARCHIVES, "tinyset", Archive(hashlib.md5(data).hexdigest(),
                                                              hashlib.sha256(data).hexdigest()))
    folder = resolve_dataset("tinyset", cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / "datasets" / "tinyset" and (folder / "qrels" / "test.tsv").exists()
    archive.unlink()  # a second call reads the cache, no download
    assert resolve_dataset("tinyset", cache_dir=tmp_path / "cache") == folder


def test_checksum_mismatch_is_refused(beir_dir, tmp_path, monkeypatch):
    archive = zipped_beir(beir_dir, tmp_path)
    monkeypatch.delenv("RERANKFORGE_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "BEIR_URL", archive.parent.as_uri() + "/{name}.zip")
    monkeypatch.setitem(download.ARCHIVES, "tinyset", Archive("0" * 32))
    with pytest.raises(OSError, match="checksum mismatch"):
        resolve_dataset("tinyset", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "datasets" / "tinyset").exists()


def test_no_network_and_no_copy_says_which_flag_or_variable_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("RERANKFORGE_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "BEIR_URL", "http://127.0.0.1:9/{name}.zip")  # discard port: refused
    with pytest.raises(DatasetNotFoundError) as err:
        resolve_dataset("scifact", cache_dir=tmp_path / "cache")
    assert "pass --data /path/to/scifact" in str(err.value) and "set RERANKFORGE_DATA_DIR" in str(err.value)
