"""TREC run files: what eval writes, read back in the same order."""

from rerankforge.eval.report import read_trec, write_trec


def test_a_written_run_reads_back_best_first_with_ties_in_run_order(tmp_path):
    run = {"q2": {"a": 0.5, "b": 0.9, "c": 0.5}, "q1": {"x": -1.25}}
    write_trec(tmp_path / "run.trec", run, "tiny")
    got = read_trec(tmp_path / "run.trec")
    assert got == {"q1": {"x": -1.25}, "q2": {"b": 0.9, "a": 0.5, "c": 0.5}}
    assert list(got["q2"]) == ["b", "a", "c"]


def _test(delta, p, ci, wins=5, losses=2):
    return {"delta": delta, "p_value": p, "ci95": ci, "wins": wins, "losses": losses, "ties": 3}


def _summary() -> dict:
    """A report.json as eval writes it for one fused reranker over hybrid (figures of README command 1)."""
    metrics = {"ndcg@10": 0.7165, "mrr@10": 0.6829, "recall@10": 0.8476}
    first = {"metrics": metrics, "vs_best_first_stage": {m: _test(0.0, 1.0, [0.0, 0.0]) for m in metrics}}
    latency = {"p50": 506.6, "p95": 574.6}
    none = {"model": None, "depth": 100, "fusion": None, "metrics": metrics,
            "latency_ms": {"rerank": {"p50": 0.0, "p95": 0.0}, "generate": latency, "total": latency}}
    finetuned = {"model": "runs/x/final", "depth": 20, "fusion": {"method": "interpolation", "alpha": 0.35},
                 "metrics": {"ndcg@10": 0.7405, "mrr@10": 0.7042, "recall@10": 0.8662},
                 "vs_none": {"ndcg@10": _test(0.024, 0.00185, [0.0098, 0.0392])},
                 "vs_best_first_stage": {"ndcg@10": _test(0.024, 0.00185, [0.0098, 0.0392])},
                 "alone": {"metrics": {"ndcg@10": 0.7319, "mrr@10": 0.7066, "recall@10": 0.8296},
                           "vs_best_first_stage": {"ndcg@10": _test(0.0154, 0.262, [-0.0103, 0.0434])}},
                 "latency_ms": {"rerank": latency, "generate": latency, "total": latency}}
    example = {"query_id": "324", "query": "Deleting Raptor reduces G-CSF levels.", "before": 0.5, "after": 1.0,
               "relevant": [{"doc_id": "d1", "text": "Oncogenic mTOR signaling", "before": 3, "after": 1}],
               "top_after": {"doc_id": "d1", "text": "Oncogenic mTOR signaling", "relevant": True}}
    lost = {**example, "query_id": "1019", "query": "Rapid phosphotransfer", "before": 1.0, "after": 0.631,
            "relevant": [{"doc_id": "d2", "text": "Using Structural Information", "before": 1, "after": 2}],
            "top_after": {"doc_id": "d3", "text": "Signaling architectures", "relevant": False}}
    return {"main_reranker": "finetuned", "hardware": {"cpu": "AMD EPYC", "cores": 2, "cpu_flags": ["avx512_bf16"], "gpu": None, "torch": "2.13"},
            "examples": {"reranker": "finetuned", "against": "hybrid", "metric": "ndcg@10", "won": [example],
                         "lost": [lost]},
            "data": {"queries": 300, "corpus_documents": 5183},
            "first_stage": {"method": "hybrid", "top_k": 100, "encoder": "minilm", "metrics": metrics,
                            "latency_ms": {"retrieve": {"p50": 12.0, "p95": 22.0}}},
            "first_stages": {"bm25": {**first, "metrics": {**metrics, "ndcg@10": 0.6863}}, "hybrid": first},
            "best_first_stage": "hybrid", "generate": {"kind": "extractive", "top_n": 3}, "baseline": "none",
            "rerankers": {"none": none, "finetuned": finetuned}}


def test_the_report_opens_with_a_verdict_in_points_with_intervals_and_the_cost_on_this_machine():
    from rerankforge.eval.report import render_markdown

    md = render_markdown(_summary(), "rerankforge quickstart", [])
    first_paragraph = md.split("\n\n")[1]  # right under the title
    assert first_paragraph.startswith("**Verdict.** Fused with the first stage: +2.4 points nDCG@10 (95% CI +1.0 to "
                                      "+3.9), significantly above hybrid (paired p = 0.0019).")
    assert ("The reranker alone (no fusion; what CrossEncoder(final) and the TEI route give): +1.5 points nDCG@10 (95% CI -1.0 to +4.3) "
            "against hybrid, not significant (paired p = 0.26).") in first_paragraph
    assert "Reranking the top 20 adds 0.51 s per query (median; p95 0.57 s) on AMD EPYC, 2 cores." in first_paragraph
    windows = _summary()
    windows["rerankers"]["finetuned"]["max_passage_tokens"] = 4096
    assert ("The reranker alone (no fusion; long passages read as windows, as the Cohere route reads them; "
            "CrossEncoder(final) cuts them): +1.5 points") in render_markdown(windows, "rerankforge quickstart", [])


def test_the_report_labels_each_run_once_and_gives_intervals_and_complete_verdicts():
    from rerankforge.eval.report import render_markdown

    md = render_markdown(_summary(), "rerankforge quickstart", [])
    assert "| first stage: hybrid (reranked, best) |" in md and "(reranked) (best)" not in md
    assert "| none | none |" not in md and "## Against none" not in md  # the first stage's own order: its row is above
    assert ("| finetuned alone | ndcg@10 | +0.0154 | -0.0103 to +0.0434 | 0.262 | 5/2/3 | no significant difference |"
            in md)
    assert "| finetuned fused | ndcg@10 | +0.0240 | +0.0098 to +0.0392 | 0.00185 | 5/2/3 | above (p < 0.05) |" in md
    assert "Measured on AMD EPYC (2 cores; avx512_bf16), GPU: none, torch 2.13." in md


def test_the_report_shows_queries_won_and_lost_with_the_passages_that_moved():
    from rerankforge.eval.report import render_markdown

    md = render_markdown(_summary(), "rerankforge quickstart", [])
    section = md.split("## Queries to read: where finetuned helped and hurt most (ndcg@10 against hybrid)")[1]
    assert '1. `324` "Deleting Raptor reduces G-CSF levels.": ndcg@10 0.500 → 1.000. Relevant: "Oncogenic mTOR ' \
           'signaling" rank 3 → 1. Now first: "Oncogenic mTOR signaling" (relevant).' in section
    assert section.index("**Helped**") < section.index("**Hurt**")
    assert 'Now first: "Signaling architectures" (not relevant).' in section


def test_example_queries_are_the_largest_gains_and_losses_with_ranks_before_and_after():
    from rerankforge.eval.examples import example_queries

    qrels = {"a": {"d1": 1}, "b": {"d2": 1}, "c": {"d3": 1}}
    corpus = {d: {"title": f"title {d}", "text": "words"} for d in ("d1", "d2", "d3", "d4")}
    before = {"a": {"d4": 3.0, "d1": 2.0}, "b": {"d2": 3.0, "d4": 1.0}, "c": {"d3": 1.0}}
    after = {"a": {"d1": 5.0, "d4": 1.0}, "b": {"d4": 2.0, "d2": 1.0}, "c": {"d3": 1.0}}
    found = example_queries(qrels, {"a": "query a"}, corpus, before, after, {"a": 0.6, "b": 1.0, "c": 1.0},
                            {"a": 1.0, "b": 0.6, "c": 1.0})
    assert [e["query_id"] for e in found["won"]] == ["a"] and [e["query_id"] for e in found["lost"]] == ["b"]
    won = found["won"][0]
    assert won["query"] == "query a" and won["relevant"] == [{"doc_id": "d1", "text": "title d1", "before": 2,
                                                               "after": 1}]
    assert found["lost"][0]["top_after"] == {"doc_id": "d4", "text": "title d4", "relevant": False}
    assert example_queries(qrels, {}, corpus, before, before, {"a": 1.0}, {"a": 1.0}) is None
