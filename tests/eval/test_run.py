"""`rerankforge eval` end to end on a tiny corpus with tiny models: every output, and numbers that agree."""

from __future__ import annotations

import json

import pytest
from conftest import eval_cfg, with_fusion, write_jsonl

from rerankforge.core.config import ConfigError, load_config
from rerankforge.core.metrics import evaluate_run
from rerankforge.core.text import doc_text
from rerankforge.eval.config import EvalConfig
from rerankforge.eval.report import read_trec
from rerankforge.eval.run import evaluate


def test_eval_writes_every_output_and_the_numbers_agree(with_answers, tiny_encoder, tiny_cross_encoder, tmp_path):
    out = tmp_path / "eval"
    report = evaluate(eval_cfg(with_answers, tiny_encoder, tiny_cross_encoder, out))
    assert report == out / "report.md"
    for name in ("report.md", "report.json", "per_query.jsonl", "config.yaml", "manifest.json",
                 "runs/first_stage.trec", "runs/none.trec", "runs/tiny.trec",
                 "plots/ndcg_at_k.png", "plots/latency.png", "plots/answer_f1_vs_passages.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "report.json").read_text())
    qrels = {"t0": {"d1": 1}, "t1": {"d6": 1}}
    for name in ("none", "tiny"):  # the report's numbers are those of its run files
        metrics = evaluate_run(qrels, read_trec(out / "runs" / f"{name}.trec"), ["ndcg@10", "mrr@10", "recall@10"])
        for key, value in metrics.items():
            assert summary["rerankers"][name]["metrics"][key] == pytest.approx(value, abs=1e-6), (name, key)
    assert summary["rerankers"]["none"]["metrics"] == summary["first_stage"]["metrics"]
    assert set(summary["rerankers"]["tiny"]["vs_none"]["ndcg@10"]) == {"delta", "p_value", "ci95", "wins", "losses",
                                                                         "ties"}
    answers = summary["rerankers"]["tiny"]["answers"]
    assert answers["queries"] == 2 and 0 <= answers["f1"] <= 1 and answers["prompt_tokens"] > 0
    assert sorted(int(n) for n in summary["rerankers"]["tiny"]["answers_by_top_n"]) == [1, 2, 3]
    rows = [json.loads(line) for line in (out / "per_query.jsonl").read_text().splitlines()]
    assert [r["query_id"] for r in rows] == ["t0", "t1"]
    assert "delta_vs_none" in rows[0]["rerankers"]["tiny"] and rows[0]["rerankers"]["tiny"]["answer"]
    md = (out / "report.md").read_text()
    assert "## Retrieval" in md and "## Answers" in md and "## Latency per query" in md
    assert "![ndcg_at_k.png](plots/ndcg_at_k.png)" in md
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["queries"] == 2 and set(manifest["inputs"]) == {"corpus", "queries", "qrels", "answers"}


def test_reranked_tail_keeps_first_stage_order_below_the_reranked_head(with_answers, tiny_encoder,
                                                                       tiny_cross_encoder, tmp_path):
    out = tmp_path / "eval"
    evaluate(eval_cfg(with_answers, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false"))
    first, tiny = read_trec(out / "runs/first_stage.trec"), read_trec(out / "runs/tiny.trec")
    for query_id in first:
        order = sorted(first[query_id], key=lambda d: -first[query_id][d])
        reranked = sorted(tiny[query_id], key=lambda d: -tiny[query_id][d])
        assert set(reranked[:5]) == set(order[:5]) and reranked[5:] == order[5:]
    assert not (out / "plots").exists()


def ranked(run: dict, query_id: str) -> list[str]:
    return sorted(run[query_id], key=lambda d: -run[query_id][d])


def test_first_stages_side_by_side_and_tested_against_the_best(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path):
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false"))
    summary = json.loads((out / "report.json").read_text())
    qrels = {"t0": {"d1": 1}, "t1": {"d6": 1}}
    stages = summary["first_stages"]
    assert set(stages) == {"bm25", "dense", "hybrid"}
    for method, entry in stages.items():  # each row is its own run file's metrics
        run = read_trec(out / "runs" / f"first_stage-{method}.trec")
        assert entry["metrics"]["ndcg@10"] == pytest.approx(evaluate_run(qrels, run)["ndcg@10"], abs=1e-6)
    best = summary["best_first_stage"]
    assert stages[best]["metrics"]["ndcg@10"] == max(e["metrics"]["ndcg@10"] for e in stages.values())
    assert stages["hybrid"]["metrics"] == summary["first_stage"]["metrics"]  # the reranked one, computed twice
    delta = summary["rerankers"]["tiny"]["vs_best_first_stage"]["ndcg@10"]["delta"]
    assert delta == pytest.approx(summary["rerankers"]["tiny"]["metrics"]["ndcg@10"] - stages[best]["metrics"]["ndcg@10"])
    assert f"## Against the best first stage, {best}" in (out / "report.md").read_text()


def test_the_reranked_first_stage_is_the_row_and_run_file_of_its_method(beir_dir, tiny_encoder, tiny_cross_encoder,
                                                                          tmp_path, monkeypatch):
    """Searching all queries at once can rank a query differently from searching it alone (a bf16 encoder pads a
    batch); the report's row for the reranked method, and its run file, are the run that was reranked."""
    import rerankforge.eval.run as run_module

    compare = run_module.compare_first_stages

    def batched_differs(pipeline, data):
        runs = compare(pipeline, data)
        runs["hybrid"] = {q: dict(zip(docs, reversed(list(docs.values())))) for q, docs in runs["hybrid"].items()}
        return runs

    monkeypatch.setattr(run_module, "compare_first_stages", batched_differs)
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false"))
    summary = json.loads((out / "report.json").read_text())
    assert summary["first_stages"]["hybrid"]["metrics"] == summary["first_stage"]["metrics"]
    assert read_trec(out / "runs" / "first_stage-hybrid.trec") == read_trec(out / "runs" / "first_stage.trec")


def test_fusion_auto_reads_fusion_json_and_the_report_shows_both(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path):
    model = with_fusion(tiny_cross_encoder, tmp_path / "fused-model", "interpolation", 0.35)
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, model, out, "generate.kind=none", "plots=false",
                      "rerankers.tiny.fusion.method=auto"))
    summary = json.loads((out / "report.json").read_text())
    assert summary["rerankers"]["tiny"]["fusion"] == {"method": "interpolation", "alpha": 0.35}
    assert set(summary["rerankers"]["tiny"]["alone"]) == {"metrics", "vs_best_first_stage"}
    assert (out / "runs" / "tiny-alone.trec").exists()
    assert "tiny fused (interpolation, alpha 0.35)" in (out / "report.md").read_text()


def test_a_fusion_weight_fitted_on_another_reading_of_long_passages_is_named(beir_dir, tiny_encoder,
                                                                            tiny_cross_encoder, tmp_path, caplog):
    model = with_fusion(tiny_cross_encoder, tmp_path / "fused-model", "interpolation", 0.35)  # fitted on cut passages
    fused = ("generate.kind=none", "plots=false", "rerankers.tiny.fusion.method=auto")
    evaluate(eval_cfg(beir_dir, tiny_encoder, model, tmp_path / "cut", *fused))
    assert "max_passage_tokens" not in caplog.text
    evaluate(eval_cfg(beir_dir, tiny_encoder, model, tmp_path / "windows", *fused,
                      "rerankers.tiny.max_passage_tokens=512"))
    assert ("rerankers.tiny: its fusion weight was fitted on dev scores read with max_passage_tokens=null (null: "
            "long passages cut); this pipeline reads max_passage_tokens=512. Train with "
            "data.dev_max_passage_tokens=512") in caplog.text


@pytest.mark.parametrize("method", ["interpolation", "rrf"])
def test_fusion_end_points_reproduce_the_reranker_and_the_first_stage(beir_dir, tiny_encoder, tiny_cross_encoder,
                                                                      tmp_path, method):
    runs = {}
    for alpha in ("1", "0"):
        out = tmp_path / f"eval-{alpha}"
        evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false",
                          f"rerankers.tiny.fusion.method={method}", f"rerankers.tiny.fusion.alpha={alpha}"))
        runs[alpha] = {name: read_trec(out / "runs" / f"{name}.trec") for name in ("tiny", "tiny-alone", "first_stage")}
    for query_id in runs["1"]["tiny"]:
        assert ranked(runs["1"]["tiny"], query_id) == ranked(runs["1"]["tiny-alone"], query_id)
        assert ranked(runs["0"]["tiny"], query_id) == ranked(runs["0"]["first_stage"], query_id)
        assert ranked(runs["0"]["tiny-alone"], query_id) != ranked(runs["0"]["first_stage"], query_id)


def test_fusion_auto_without_fusion_json_is_a_config_problem(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path):
    cfg = eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path / "eval", "rerankers.tiny.fusion.method=auto")
    with pytest.raises(ConfigError, match=r"rerankers.tiny: fusion.method=auto, fusion.alpha=auto reads the weight"):
        evaluate(cfg)


def test_every_config_problem_is_reported_at_once(tmp_path):
    cfg = load_config(EvalConfig, None, ["retrieve.top_k=5", "rerankers.ft.depth=50", "generate.kind=openai",
                                         "generate.prompt=no fields", "metrics=[ndcg@x, bleu]",
                                         "rerankers.ft.max_passage_tokens=0"])
    with pytest.raises(ConfigError) as err:
        evaluate(cfg)
    text = str(err.value)
    for expected in ("data.path is not set", "rerankers.ft.depth must be in [1, retrieve.top_k=5], got 50",
                     "generate.kind=openai needs generate.base_url", "must contain {query} and {passages}",
                     "bad cutoff in metric 'ndcg@x'", "unknown metric 'bleu'",
                     "rerankers.ft.max_passage_tokens must be >= 1 (read long passages as windows) or null (cut "
                     "them), got 0"):
        assert expected in text, expected


def test_missing_files_and_unknown_ids_are_data_errors(beir_dir, tmp_path):
    from rerankforge.core.problems import DataError

    (beir_dir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nt0\tnope\t1\nzz\td1\t1\n")
    with pytest.raises(DataError) as err:
        evaluate(load_config(EvalConfig, None, [f"data.path={beir_dir}"]))
    assert "document id(s) in the qrels are not in the corpus: 'nope'" in str(err.value)
    assert "query id(s) in the qrels are not in the queries file: 'zz'" in str(err.value)
    with pytest.raises(DataError, match="qrels file not found: .*dev.tsv"):
        evaluate(load_config(EvalConfig, None, [f"data.path={beir_dir}", "data.split=dev"]))


def test_tied_first_stage_scores_keep_the_pipeline_order_in_runs_and_metrics():
    from rerankforge.core.metrics import untied

    hits = [("b", 0.5), ("a", 0.5), ("c", 0.4), ("d", 0.4)]
    run = untied(hits)
    assert list(run) == ["b", "a", "c", "d"] and run["b"] > run["a"] > run["c"] > run["d"]
    # With the raw tied scores trec_eval would put "a" first; the pipeline put "b" first, and "a" is relevant.
    assert evaluate_run({"q": {"a": 1}}, {"q": run}, ["mrr@10"])["mrr@10"] == pytest.approx(0.5)
    assert hits == [("b", 0.5), ("a", 0.5), ("c", 0.4), ("d", 0.4)]  # input untouched


def test_a_reranker_without_a_trained_head_scores_the_same_every_run(with_answers, tiny_encoder, tmp_path):
    """A bi-encoder as the "base" reranker gets a random head; eval's seed makes its report repeat."""
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        evaluate(eval_cfg(with_answers, tiny_encoder, tiny_encoder, out, "generate.kind=none", "plots=false"))
        runs.append(read_trec(out / "runs/tiny.trec"))
    assert runs[0] == runs[1]


@pytest.fixture
def openvino_compiles(monkeypatch) -> list:
    """Records the ``quantize`` of every OpenVINO compilation, so a test knows the backend really ran."""
    from rerankforge.models import openvino_backend

    calls, real = [], openvino_backend.compile_openvino

    def spy(model, encode, quantize=None, *args):
        calls.append(quantize)
        return real(model, encode, quantize, *args)

    monkeypatch.setattr(openvino_backend, "compile_openvino", spy)
    return calls


def test_openvino_backend_reranks_like_torch(with_answers, tiny_encoder, tiny_cross_encoder, tmp_path,
                                             openvino_compiles):
    pytest.importorskip("openvino")
    runs = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / backend
        evaluate(eval_cfg(with_answers, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false",
                          f"rerankers.tiny.backend={backend}"))
        runs[backend] = read_trec(out / "runs/tiny.trec")
    assert openvino_compiles == [None]
    for query_id, scores in runs["torch"].items():
        assert runs["openvino"][query_id] == pytest.approx(scores, abs=1e-4)


def test_an_unknown_backend_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"'rerankers\.a\.backend': Invalid value 'onnx', expected one of "
                                          r"\['torch', 'openvino'\]"):
        load_config(EvalConfig, None, ["rerankers={a: {model: m, backend: onnx}}"])


def test_openvino_int8_reranks_with_pairs_from_the_mined_set(with_answers, tiny_encoder, tiny_cross_encoder, mined,
                                                              tmp_path, openvino_compiles):
    pytest.importorskip("nncf")
    out = tmp_path / "int8"
    evaluate(eval_cfg(with_answers, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false",
                      "rerankers.tiny.backend=openvino", "rerankers.tiny.quantize=int8",
                      f"rerankers.tiny.calibration={mined}"))
    run = read_trec(out / "runs/tiny.trec")
    assert set(run) == {"t0", "t1"} and all(len(docs) == 10 for docs in run.values())
    assert openvino_compiles == ["int8"]


def test_openvino_int8_without_calibration_is_a_config_problem(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path):
    with pytest.raises(ConfigError, match=r"rerankers\.tiny: backend=openvino with quantize=int8 needs "
                                          r"rerankers\.tiny\.calibration"):
        evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path / "e", "rerankers.tiny.backend=openvino",
                          "rerankers.tiny.quantize=int8"))


def test_an_exported_int8_folder_needs_no_calibration_and_is_not_converted_again(with_answers, tiny_encoder,
                                                                                 tiny_cross_encoder, tmp_path,
                                                                                 openvino_compiles):
    import shutil

    pytest.importorskip("nncf")
    from rerankforge.models.openvino_backend import convert_openvino, save_openvino
    from rerankforge.models.reranker import Reranker

    folder = tmp_path / "final-openvino-int8"
    shutil.copytree(tiny_cross_encoder, folder)
    torch_model = Reranker(str(folder), device="cpu")
    pairs = [("cat sat", "the cat sat on the mat"), ("dogs eat", "dogs eat food"), ("gene", "cancer risk gene")]
    save_openvino(convert_openvino(torch_model.model, torch_model._encode, "int8", pairs), folder, "int8")
    out = tmp_path / "eval"
    evaluate(eval_cfg(with_answers, tiny_encoder, str(folder), out, "generate.kind=none", "plots=false",
                      "rerankers.tiny.backend=openvino", "rerankers.tiny.quantize=int8"))
    assert set(read_trec(out / "runs/tiny.trec")) == {"t0", "t1"} and openvino_compiles == []


@pytest.mark.parametrize("aggregate, read", [("max", None), ("first", None), ("max", 2)])
def test_chunked_documents_are_retrieved_reranked_and_measured_per_document(tmp_path, tiny_encoder,
                                                                             tiny_cross_encoder, aggregate, read,
                                                                             monkeypatch):
    from conftest import make_long_beir

    from rerankforge.models.reranker import Reranker

    beir = make_long_beir(tmp_path / "long")
    scored = []
    original = Reranker.score_pairs
    monkeypatch.setattr(Reranker, "score_pairs", lambda self, pairs, **kw: scored.extend(p for _, p in pairs)
                        or original(self, pairs, **kw))
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir, tiny_encoder, tiny_cross_encoder, out, "data.chunking.mode=all",
                      "data.chunking.unit=chars", "data.chunking.size=100", "data.chunking.overlap=0",
                      f"data.chunking.aggregate={aggregate}", "retrieve.top_k=4", "rerankers.none.depth=4",
                      "rerankers.tiny.depth=3", "generate.kind=extractive",
                      f"data.chunking.read_passages={'null' if read is None else read}"))
    summary = json.loads((out / "report.json").read_text())
    assert summary["data"]["corpus_documents"] == 12 and summary["data"]["corpus_passages"] > 12
    assert summary["data"]["document_scoring"] == aggregate
    qrels = {"t0": {"d0": 1}, "t1": {"d3": 1}, "t2": {"d6": 1}}
    for name in ("first_stage", "none", "tiny"):
        run = read_trec(out / "runs" / f"{name}.trec")
        assert all("#" not in d for docs in run.values() for d in docs)  # documents, not passages
        assert all(len(docs) <= 4 for docs in run.values())
        metrics = evaluate_run(qrels, run, ["ndcg@10", "mrr@10", "recall@10"])
        expected = summary["first_stage"] if name == "first_stage" else summary["rerankers"][name]
        assert {k: expected["metrics"][k] for k in metrics} == pytest.approx(metrics, abs=1e-6), name
    # FirstP scores the first passage of each reranked document; MaxP every passage of each, or its `read` closest
    assert all(len(p) <= 100 + len("doc d10 ") for p in scored)
    if aggregate == "first":
        assert len(scored) == 3 * 3
    elif read:
        assert len(scored) == 3 * 3 * read  # 3 queries, 3 documents each, `read` passages of each
    else:
        assert len(scored) > 3 * 3 * 3
    rows = [json.loads(line) for line in (out / "per_query.jsonl").read_text().splitlines()]
    assert all("#" not in d for r in rows for d in r["rerankers"]["tiny"]["top_passages"])


def test_a_2000_token_query_and_a_100_kb_document_go_through_eval(beir_dir, tiny_encoder, tiny_cross_encoder,
                                                                  tmp_path):
    corpus = [json.loads(line) for line in (beir_dir / "corpus.jsonl").read_text().splitlines()]
    corpus.append({"_id": "huge", "title": "huge", "text": "cats eat fish. " * 7000})  # ~105 KB
    write_jsonl(beir_dir / "corpus.jsonl", corpus)
    queries = [json.loads(line) for line in (beir_dir / "queries.jsonl").read_text().splitlines()]
    queries.append({"_id": "t9", "text": " ".join(["cats eat fish"] * 700)})  # ~2,100 tokens
    write_jsonl(beir_dir / "queries.jsonl", queries)
    with open(beir_dir / "qrels" / "test.tsv", "a") as fh:
        fh.write("t9\thuge\t1\n")
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out))
    summary = json.loads((out / "report.json").read_text())
    assert summary["data"]["queries"] == 3
    assert "t9" in read_trec(out / "runs" / "tiny.trec")



def saved_at(tiny_cross_encoder: str, folder, max_length: int):
    """A copy of the tiny cross-encoder whose tokenizer says ``max_length``, as training saves it."""
    import shutil

    from transformers import AutoTokenizer

    shutil.copytree(tiny_cross_encoder, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(folder)
    return folder


def reranked_head(beir_dir, out, query_id: str = "t0", depth: int = 5):
    """(query, the first stage's top ``depth`` ids and texts, the reranked run's order of them)."""
    first, reranked = read_trec(out / "runs/first_stage.trec"), read_trec(out / "runs/tiny.trec")
    corpus = {json.loads(line)["_id"]: json.loads(line) for line in (beir_dir / "corpus.jsonl").open()}
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (beir_dir / "queries.jsonl").open()}
    head = ranked(first, query_id)[:depth]
    return queries[query_id], head, [doc_text(corpus[d]) for d in head], ranked(reranked, query_id)[:depth]


def test_a_reranker_without_max_length_reads_as_long_as_its_checkpoint_says(beir_dir, tiny_encoder,
                                                                            tiny_cross_encoder, tmp_path):
    """rerankers.<name>.max_length unset: the checkpoint's own length (what training saved), as CrossEncoder does."""
    from rerankforge.models.reranker import Reranker

    model = saved_at(tiny_cross_encoder, tmp_path / "saved-at-20", 20)
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false",
                      f"rerankers.tiny.model={model}", "rerankers.tiny.max_length=null"))
    query, head, texts, order = reranked_head(beir_dir, out)
    at_20 = Reranker(str(model), device="cpu").score(query, texts, raw=True)
    at_48 = Reranker(str(model), device="cpu", max_length=48).score(query, texts, raw=True)
    assert order == [head[i] for i in sorted(range(5), key=lambda i: -at_20[i])]
    assert order != [head[i] for i in sorted(range(5), key=lambda i: -at_48[i])]  # the pairs run past 20 tokens


def test_max_passage_tokens_reads_a_long_passage_as_windows_and_keeps_its_best(beir_dir, tiny_encoder,
                                                                              tiny_cross_encoder, tmp_path):
    """MaxP: each passage scores as the best of its windows of max_length tokens, as the Cohere route reads it."""
    from rerankforge.models.pairs import PairLimits, encode_pairs
    from rerankforge.models.reranker import Reranker

    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false",
                      "rerankers.tiny.max_length=20", "rerankers.tiny.max_passage_tokens=4096"))
    query, head, texts, order = reranked_head(beir_dir, out)
    reranker = Reranker(tiny_cross_encoder, device="cpu", max_length=20)
    limits = PairLimits(max_length=20, max_passage_tokens=4096)
    inputs, owners = encode_pairs(reranker.tokenizer, [(query, t) for t in texts], limits)
    assert len(inputs) > len(texts)  # the passages need more than one window of 20 tokens
    best = reranker.score(query, texts, raw=True, limits=limits)
    assert order == [head[i] for i in sorted(range(5), key=lambda i: -best[i])]
    cut = reranker.score(query, texts, raw=True)
    # the first window is the cut passage: the best window scores at least as high, and higher somewhere
    assert best != pytest.approx(cut, abs=1e-3) and all(b >= c - 1e-5 for b, c in zip(best, cut))
    assert order != [head[i] for i in sorted(range(5), key=lambda i: -cut[i])]  # cut passages rank otherwise
