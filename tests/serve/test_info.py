"""GET /info: text-embeddings-inference's keys and values for the served reranker, plus rerankforge's own."""

from __future__ import annotations

from importlib import metadata

import httpx

from rerankforge.serve import ServeConfig, create_app


def test_info_has_teis_shape_and_our_keys(server):
    info = httpx.get(f"{server.url}/info").json()
    assert info == {
        "model_id": "tiny", "model_sha": None, "model_dtype": "float32",
        "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}},
        "max_input_length": 48, "max_batch_tokens": 32 * 48, "max_batch_requests": None,
        "max_client_batch_size": 5, "auto_truncate": False, "tokenization_workers": 1,
        "version": metadata.version("rerankforge"), "sha": None, "docker_label": None,
        "backend": "torch", "quantize": None, "calibrated": False, "max_batch_pairs": 512, "micro_batching": True,
        "pipeline": False,
        "rerankers": {"tiny": {"model_id": "tiny", "max_input_length": 48, "model_dtype": "float32",
                               "calibrated": False, "fusion": None}},
    }


class Platt:
    def probability(self, logit: float) -> float:
        return 0.5


def test_info_says_when_the_reranker_is_calibrated_and_fuses(reranker, launch, monkeypatch):
    monkeypatch.setattr(reranker, "calibration", Platt(), raising=False)
    monkeypatch.setattr(reranker, "fusion", {"method": "interpolation", "alpha": 0.5, "rrf_k": 60}, raising=False)
    live = launch(create_app(ServeConfig(model="runs/x/final", max_length=48), reranker=reranker))
    info = httpx.get(f"{live.url}/info").json()
    assert info["calibrated"] is True and info["model_id"] == "runs/x/final"
    assert info["rerankers"] == {"runs/x/final": {"model_id": "runs/x/final", "max_input_length": 48,
                                                  "model_dtype": "float32", "calibrated": True,
                                                  "fusion": {"method": "interpolation", "alpha": 0.5}}}


def test_without_max_length_each_model_reads_as_long_as_its_checkpoint_says(tiny_cross_encoder, launch, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    model = tmp_path / "saved-at-40"
    shutil.copytree(tiny_cross_encoder, model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.model_max_length = 40
    tokenizer.save_pretrained(model)
    live = launch(create_app(ServeConfig(model=str(model), models={"plain": tiny_cross_encoder}, device="cpu")))
    info = httpx.get(f"{live.url}/info").json()
    assert info["max_input_length"] == 40
    assert {name: r["max_input_length"] for name, r in info["rerankers"].items()} == {str(model): 40, "plain": 128}
