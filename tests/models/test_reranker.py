"""Reranker backends: PyTorch float32 / dynamic int8 and OpenVINO float32 / static int8 give the same ranking."""

import sys

import pytest
import torch

from rerankforge.models.reranker import Reranker

QUERY = "what do cats eat"
DOCS = ["cats eat fish and mice", "dogs bark at night", "the sun is a star", "cats sleep all day",
        "fish swim in the sea", "mice eat cheese"]


def test_rerank_is_cohere_shaped_and_sorted(tiny_cross_encoder):
    reranker = Reranker(tiny_cross_encoder, device="cpu")
    results = reranker.rerank(QUERY, DOCS, top_n=3)
    raw = reranker.score(QUERY, DOCS, raw=True)
    assert [r["index"] for r in results] == sorted(range(len(DOCS)), key=lambda i: -raw[i])[:3]
    assert results[0]["relevance_score"] == pytest.approx(torch.sigmoid(torch.tensor(raw[results[0]["index"]])).item())


def agree(full: list[float], other: list[float]) -> bool:
    """Same best document and Pearson correlation > 0.9: the ranking survives quantization (tiny random model)."""
    corr = torch.corrcoef(torch.tensor([full, other]))[0, 1].item()
    return max(range(len(full)), key=full.__getitem__) == max(range(len(other)), key=other.__getitem__) and corr > 0.9


def test_torch_int8_stays_close_to_float32(tiny_cross_encoder):
    full = Reranker(tiny_cross_encoder, device="cpu").score(QUERY, DOCS, raw=True)
    int8 = Reranker(tiny_cross_encoder, device="cpu", quantize="int8").score(QUERY, DOCS, raw=True)
    assert int8 != full  # it really runs quantized
    assert agree(full, int8)


def test_openvino_float32_equals_torch(tiny_cross_encoder):
    pytest.importorskip("openvino")
    full = Reranker(tiny_cross_encoder, device="cpu", batch_size=4).score(QUERY, DOCS, raw=True)
    ov = Reranker(tiny_cross_encoder, device="cpu", batch_size=4, backend="openvino").score(QUERY, DOCS, raw=True)
    assert ov == pytest.approx(full, abs=1e-4)


def test_openvino_int8_is_calibrated_and_close(tiny_cross_encoder):
    pytest.importorskip("nncf")
    calibration = [(q, d) for q in (QUERY, "where do fish live") for d in DOCS]
    full = Reranker(tiny_cross_encoder, device="cpu").score(QUERY, DOCS, raw=True)
    int8 = Reranker(tiny_cross_encoder, device="cpu", backend="openvino", quantize="int8",
                    calibration=calibration).score(QUERY, DOCS, raw=True)
    assert int8 != pytest.approx(full, abs=1e-6)
    assert agree(full, int8)


def test_openvino_int8_without_calibration_says_what_to_pass(tiny_cross_encoder):
    with pytest.raises(ValueError, match=r"needs calibration=\[\(query, passage\), \.\.\.\]"):
        Reranker(tiny_cross_encoder, device="cpu", backend="openvino", quantize="int8")


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "onnx"}, "backend 'torch' or 'openvino'; got quantize=None, backend='onnx'"),
    ({"quantize": "int4"}, "quantize must be None or 'int8'"),
    ({"quantize": "int8", "device": "cuda"}, "run on CPU only; device is cuda"),
])
def test_bad_options_are_errors(tiny_cross_encoder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Reranker(tiny_cross_encoder, **{"device": "cpu", **kwargs})


def test_missing_openvino_gives_the_pip_command(tiny_cross_encoder, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'rerankforge\[openvino\]'"):
        Reranker(tiny_cross_encoder, device="cpu", backend="openvino")


def test_calibration_pairs_come_from_a_mined_training_set(mined):
    from datasets import load_from_disk

    from rerankforge.models.openvino_backend import load_calibration_pairs

    rows = [dict(r) for r in load_from_disk(str(mined / "dataset"))]
    pairs = load_calibration_pairs(str(mined), limit=10)
    assert len(pairs) == 10
    first = rows[0]  # query-positive first, then that query's negatives
    assert pairs[:4] == [(first["query"], first["positive"])] + [(first["query"], n) for n in first["negatives"]]


def test_calibration_pairs_from_query_passage_records_and_bad_files(tmp_path):
    from conftest import write_jsonl

    from rerankforge.models.openvino_backend import load_calibration_pairs

    good = write_jsonl(tmp_path / "pairs.jsonl", [{"query": "q1", "passage": "p1"}, {"query": "q2", "passage": "p2"}])
    assert load_calibration_pairs(str(good)) == [("q1", "p1"), ("q2", "p2")]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q1", "text": "p1"}])
    with pytest.raises(ValueError, match=r"expected \(query, passage\) records.*fields \['question', 'text'\]"):
        load_calibration_pairs(str(bad))
    with pytest.raises(ValueError, match="no such file or folder"):
        load_calibration_pairs(str(tmp_path / "missing.jsonl"))


LONG_QUERY = " ".join(["cats eat fish"] * 700)  # 2,100 tokens
LONG_DOC = "dogs bark at night. " * 5000  # 100 KB


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_a_2000_token_query_and_a_100_kb_document_score(tiny_cross_encoder, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    reranker = Reranker(tiny_cross_encoder, device="cpu", max_length=64, backend=backend)
    scores = reranker.score(LONG_QUERY, [LONG_DOC, "cats eat fish", ""])
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)
    assert reranker.score_pairs([(LONG_QUERY, LONG_DOC)]) == pytest.approx(scores[:1], abs=1e-4)


def test_windows_score_a_long_passage_by_its_best_window(tiny_cross_encoder):
    from rerankforge.models.pairs import PairLimits, encode_pairs, pad_inputs

    reranker = Reranker(tiny_cross_encoder, device="cpu", max_length=32)
    passage = "dogs bark at night. " * 30 + "cats eat fish and mice. " * 3 + "the sun is a star. " * 30
    limits = PairLimits(max_length=32, max_passage_tokens=10_000, stride=8)
    maxp = reranker.score(QUERY, [passage], raw=True, limits=limits)[0]
    inputs, _ = encode_pairs(reranker.tokenizer, [(QUERY, passage)], limits)
    with torch.inference_mode():
        each = [reranker.model(**pad_inputs(reranker.tokenizer, [i])).logits.item() for i in inputs]
    assert len(each) > 3 and maxp == pytest.approx(max(each), abs=1e-5)
    assert reranker.score(QUERY, [passage], raw=True)[0] == pytest.approx(each[0], abs=1e-5)  # default: truncate


@pytest.mark.parametrize("method, alpha", [("interpolation", 0.35), ("rrf", 0.6)])
def test_rerank_with_first_stage_scores_reproduces_evals_fused_run(tiny_cross_encoder, tmp_path, method, alpha):
    from conftest import with_fusion

    from rerankforge.eval.config import RerankerConfig
    from rerankforge.eval.pipeline import rerank_hits

    model = with_fusion(tiny_cross_encoder, tmp_path / "fused", method, alpha)
    reranker = Reranker(model, device="cpu")
    # the first stage's hits, best first, with a tie; the request sends them in another order
    hits = [("d3", 0.9), ("d0", 0.7), ("d5", 0.7), ("d1", 0.4), ("d4", 0.2), ("d2", 0.1)]
    texts = {f"d{i}": doc for i, doc in enumerate(DOCS)}
    expected = rerank_hits(reranker, RerankerConfig(model=model, depth=len(hits)), QUERY, hits, texts,
                           fusion=(method, alpha, 60)).hits
    sent = [hits[i] for i in (4, 1, 5, 0, 2, 3)]
    results = reranker.rerank(QUERY, [texts[d] for d, _ in sent], first_stage_scores=[s for _, s in sent])
    assert [sent[r["index"]][0] for r in results] == [d for d, _ in expected]
    assert [r["relevance_score"] for r in results] == pytest.approx([s for _, s in expected], abs=1e-9)
    assert [r["index"] for r in reranker.rerank(QUERY, DOCS)] != [r["index"] for r in results]  # fusion moved it


def test_first_stage_scores_need_a_fusion_json_and_one_score_per_doc(tiny_cross_encoder, tmp_path):
    from conftest import with_fusion

    with pytest.raises(ValueError, match="has no fusion.json: training writes one"):
        Reranker(tiny_cross_encoder, device="cpu").rerank(QUERY, DOCS, first_stage_scores=[1.0] * len(DOCS))
    fused = Reranker(with_fusion(tiny_cross_encoder, tmp_path / "fused"), device="cpu")
    with pytest.raises(ValueError, match="first_stage_scores has 2 values for 6 documents"):
        fused.rerank(QUERY, DOCS, first_stage_scores=[1.0, 0.5])
    with pytest.raises(ValueError, match="must be finite"):
        fused.rerank(QUERY, DOCS, first_stage_scores=[float("nan")] * len(DOCS))


def test_predict_and_rank_give_what_sentence_transformers_cross_encoder_gives(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    ours, theirs = Reranker(tiny_cross_encoder, device="cpu", max_length=48), CrossEncoder(tiny_cross_encoder,
                                                                                            device="cpu")
    pairs = [(QUERY, d) for d in DOCS]
    assert ours.predict(pairs) == pytest.approx(theirs.predict(pairs), abs=1e-5)
    assert float(ours.predict(pairs[0])) == pytest.approx(float(theirs.predict(pairs[0])), abs=1e-5)
    logits = ours.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_numpy=False)
    assert logits == pytest.approx(ours.score(QUERY, DOCS, raw=True), abs=1e-6)
    assert torch.is_tensor(ours.predict(pairs, convert_to_tensor=True))
    ranked, expected = ours.rank(QUERY, DOCS, top_k=2, return_documents=True), theirs.rank(QUERY, DOCS, top_k=2)
    assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in expected]
    assert [r["score"] for r in ranked] == pytest.approx([float(r["score"]) for r in expected], abs=1e-5)
    assert ranked[0]["text"] == DOCS[ranked[0]["corpus_id"]] and ranked[0]["score"] >= ranked[1]["score"]


def test_a_length_past_the_models_positions_is_capped_and_a_given_one_with_a_warning(tiny_cross_encoder, caplog):
    """The tiny BERT has 128 positions and a tokenizer that names no limit."""
    assert Reranker(tiny_cross_encoder, device="cpu").max_length == 128 and not caplog.records
    reranker = Reranker(tiny_cross_encoder, device="cpu", max_length=512)
    assert reranker.max_length == reranker.limits.max_length == 128
    assert "max_length=512 is more than" in caplog.text and "can read (128 positions)" in caplog.text
    long_pair = reranker.score("query", ["word " * 400], raw=True)  # would fail past the 128 positions
    assert len(long_pair) == 1
