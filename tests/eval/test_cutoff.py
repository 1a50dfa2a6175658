"""generate.cutoff: the selection on hand-worked cases, the config checks, the cut-off sweep end to end, and
Pipeline.query with a cut-off."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from conftest import eval_cfg, with_fusion

from rerankforge.core.config import ConfigError, load_config
from rerankforge.eval.config import CutoffConfig, CutoffSweep, EvalConfig, GenerateConfig, check_eval_config
from rerankforge.eval.cutoff import CONFIGURED, cut, cutoff_points, leading_token_counts, select_passages
from rerankforge.eval.run import evaluate


def prob(p: float, min_passages: int = 1) -> CutoffConfig:
    return CutoffConfig(kind="min_probability", min_probability=p, min_passages=min_passages)


def budget(tokens: int, min_passages: int = 1) -> CutoffConfig:
    return CutoffConfig(kind="token_budget", token_budget=tokens, min_passages=min_passages)


# --- select_passages -------------------------------------------------------------------------------------------

def test_top_n_sends_the_first_top_n_or_all_there_are():
    assert select_passages(5, CutoffConfig(), top_n=3) == 3
    assert select_passages(2, CutoffConfig(), top_n=3) == 2
    assert select_passages(0, CutoffConfig(), top_n=3) == 0


def test_min_probability_keeps_the_boundary_and_stops_at_the_first_passage_below():
    probabilities = [0.9, 0.5, 0.49, 0.8]
    assert select_passages(4, prob(0.5), 4, probabilities) == 2  # 0.5 >= 0.5 passes; 0.8 after 0.49 does not
    assert select_passages(4, prob(0.5000001), 4, probabilities) == 1
    assert select_passages(4, prob(0.0), 4, probabilities) == 4


def test_min_probability_sends_at_least_min_passages_and_at_most_top_n():
    assert select_passages(3, prob(0.5), 3, [0.2, 0.1, 0.05]) == 1  # min_passages defaults to 1
    assert select_passages(3, prob(0.5, min_passages=2), 3, [0.2, 0.1, 0.05]) == 2
    assert select_passages(2, prob(0.5, min_passages=3), 3, [0.2, 0.1]) == 2  # never more than there are
    assert select_passages(5, prob(0.5), 3, [0.9] * 5) == 3  # top_n caps
    assert select_passages(0, prob(0.5), 3, []) == 0


def test_token_budget_keeps_a_passage_that_fills_it_exactly():
    counts = [10, 20, 5]
    assert select_passages(3, budget(30), 1, token_counts=counts) == 2  # 10 + 20 = 30 fits
    assert select_passages(3, budget(29), 1, token_counts=counts) == 1
    assert select_passages(3, budget(35), 1, token_counts=counts) == 3
    assert select_passages(3, budget(34), 1, token_counts=[10, 30, 1]) == 1  # stops at the first that overflows


def test_token_budget_sends_at_least_min_passages_and_is_not_capped_by_top_n():
    assert select_passages(3, budget(5), 3, token_counts=[10, 20, 5]) == 1
    assert select_passages(3, budget(5, min_passages=2), 3, token_counts=[10, 20, 5]) == 2
    assert select_passages(10, budget(100), 3, token_counts=[1] * 10) == 10


def test_a_cutoff_without_its_inputs_is_an_error():
    with pytest.raises(ValueError, match="min_probability needs the passages' probabilities"):
        select_passages(3, prob(0.5), 3)
    with pytest.raises(ValueError, match="token_budget needs the passages' token counts"):
        select_passages(3, budget(10), 3)


def test_token_counts_stop_after_the_largest_budget_overflows():
    seen = []
    count = lambda text: seen.append(text) or len(text)  # noqa: E731
    assert leading_token_counts(count, ["aaa", "bb", "cccc", "d", "e"], budget=5, at_least=0) == [3, 2, 4]
    assert seen == ["aaa", "bb", "cccc"]
    assert leading_token_counts(len, ["aaa", "bb", "cccc", "d"], budget=5, at_least=4) == [3, 2, 4, 1]
    assert leading_token_counts(len, ["aaa"], budget=50, at_least=0) == [3]


def test_cut_counts_the_numbered_prompt_blocks_for_every_point():
    g = GenerateConfig(top_n=2, max_passage_chars=4, cutoff=CutoffConfig(
        kind="token_budget", token_budget=12, sweep=CutoffSweep(min_probability=[0.6], token_budget=[5, 100])))
    blocks = []
    count = lambda text: blocks.append(text) or len(text)  # noqa: E731
    texts = ["aaaaaa", "bbbb", "cc", "dd"]
    points = cutoff_points(g, has_probabilities=True)
    assert list(points) == [CONFIGURED, "min_probability=0.6", "token_budget=5", "token_budget=100"]
    sent = cut(points, g, texts, [0.9, 0.7, 0.1, 0.9], count)
    # blocks "[1] aaaa" (8 chars), "\n\n[2] bbbb" (10), "\n\n[3] cc" (8), "\n\n[4] dd" (8)
    assert blocks == ["[1] aaaa", "\n\n[2] bbbb", "\n\n[3] cc", "\n\n[4] dd"]
    assert {label: (s.kind, s.passages, s.passage_tokens) for label, s in sent.items()} == {
        CONFIGURED: ("token_budget", 1, 8), "min_probability=0.6": ("min_probability", 2, 18),
        "token_budget=5": ("token_budget", 1, 8), "token_budget=100": ("token_budget", 4, 34)}


def test_a_row_without_probabilities_falls_back_to_top_n_and_skips_the_probability_sweep():
    g = GenerateConfig(top_n=2, cutoff=replace(prob(0.5), sweep=CutoffSweep(min_probability=[0.3], token_budget=[9])))
    points = cutoff_points(g, has_probabilities=False)
    assert list(points) == [CONFIGURED, "token_budget=9"] and points[CONFIGURED].kind == "top_n"
    sent = cut(points, g, ["a", "b", "c"], None, len)
    assert sent[CONFIGURED].passages == 2 and sent[CONFIGURED].kind == "top_n"


# --- config checks ---------------------------------------------------------------------------------------------

def test_every_cutoff_problem_names_the_key_what_was_given_and_what_is_expected():
    cfg = load_config(EvalConfig, None, [
        "data.path=x", "generate.top_n=2", "generate.cutoff.kind=min_probability",
        "generate.cutoff.min_probability=1.5", "generate.cutoff.token_budget=0", "generate.cutoff.min_passages=3",
        "generate.cutoff.sweep.min_probability=[0.5, -0.1]", "generate.cutoff.sweep.token_budget=[0, 10]",
        "generate.kind=none"])
    problems = "\n".join(check_eval_config(cfg))
    for expected in (
            "generate.cutoff.min_probability must be a probability in [0, 1], got 1.5",
            "generate.cutoff.token_budget must be >= 1 token, got 0",
            "generate.cutoff.sweep.min_probability has [-0.1]; expected probabilities in [0, 1]",
            "generate.cutoff.sweep.token_budget has [0]; expected budgets >= 1 token",
            "generate.cutoff.min_passages=3 is above generate.top_n=2, which caps min_probability",
            "generate.cutoff.kind=min_probability needs a reranker, but every row of rerankers has model: null",
            "generate.cutoff.sweep needs a generator, but generate.kind=none writes no answers"):
        assert expected in problems, expected


def test_a_probability_sweep_needs_a_reranker_and_a_model_row_is_enough():
    sweep = ["data.path=x", "generate.cutoff.sweep.min_probability=[0.5]"]
    problems = check_eval_config(load_config(EvalConfig, None, [*sweep, "rerankers={none: {model: null}}"]))
    assert any(p.startswith("generate.cutoff.sweep.min_probability needs a reranker") for p in problems)
    assert check_eval_config(load_config(EvalConfig, None, [*sweep, "rerankers={none: {model: null}, "
                                                                    "ft: {model: some/model}}"])) == []
    assert check_eval_config(load_config(EvalConfig, None, ["data.path=x", "generate.cutoff.kind=token_budget",
                                                            "generate.cutoff.min_passages=9"])) == []


def test_an_unknown_cutoff_kind_names_the_choices():
    with pytest.raises(ConfigError, match=r"'generate\.cutoff\.kind': Invalid value 'top_k', expected one of "
                                          r"\['top_n', 'min_probability', 'token_budget'\]"):
        load_config(EvalConfig, None, ["generate.cutoff.kind=top_k"])


# --- end to end ------------------------------------------------------------------------------------------------

@pytest.fixture
def generate_calls(monkeypatch) -> list:
    """Records (query, passages) of every generator call."""
    from rerankforge.eval.generate import ExtractiveGenerator

    calls, real = [], ExtractiveGenerator.generate
    monkeypatch.setattr(ExtractiveGenerator, "generate",
                        lambda self, query, passages: calls.append((query, list(passages))) or real(self, query, passages))
    return calls


SWEEP = ["generate.cutoff.kind=min_probability", "generate.cutoff.min_probability=0.5",
         "generate.cutoff.sweep.min_probability=[0.3,0.6,0.9]", "generate.cutoff.sweep.token_budget=[30,60,400]"]


def test_the_cutoff_sweep_reports_tokens_vs_answers_and_plots_them(with_answers, tiny_encoder, tiny_cross_encoder,
                                                                   tmp_path, generate_calls):
    out = tmp_path / "eval"
    evaluate(eval_cfg(with_answers, tiny_encoder, tiny_cross_encoder, out, *SWEEP))
    summary = json.loads((out / "report.json").read_text())
    assert summary["generate"]["cutoff"]["kind"] == "min_probability"
    tiny, none = summary["rerankers"]["tiny"], summary["rerankers"]["none"]
    assert [(p["kind"], p["value"]) for p in tiny["answers_by_cutoff"]] == [
        ("min_probability", 0.3), ("min_probability", 0.6), ("min_probability", 0.9),
        ("token_budget", 30), ("token_budget", 60), ("token_budget", 400)]
    assert [p["kind"] for p in none["answers_by_cutoff"]] == ["token_budget"] * 3  # no probability without a model
    keys = {"kind", "value", "passages", "passage_tokens", "prompt_tokens", "answer_in_context", "exact_match", "f1",
            "queries"}
    for entry in (tiny, none):
        points = entry["answers_by_cutoff"]
        assert all(set(p) == keys and p["queries"] == 2 for p in points)
        budgets = [p for p in points if p["kind"] == "token_budget"]
        assert [p["passages"] for p in budgets] == sorted(p["passages"] for p in budgets)  # more budget, more sent
        assert budgets[-1]["passages"] > budgets[0]["passages"]
        assert budgets[-1]["passage_tokens"] <= 400 and budgets[-1]["prompt_tokens"] > budgets[-1]["passage_tokens"]
    assert tiny["answers"]["cutoff"] == "min_probability" and none["answers"]["cutoff"] == "top_n"
    assert none["answers"]["passages"] == 2  # top_n for the row without a reranker
    rows = [json.loads(line) for line in (out / "per_query.jsonl").read_text().splitlines()]
    for row in rows:
        sent = row["rerankers"]["tiny"]
        assert 1 <= sent["passages_sent"] <= 2 and len(sent["probabilities"]) == sent["passages_sent"]
        assert all(p >= 0.5 for p in sent["probabilities"][1:])  # past min_passages, each one passed
        assert row["rerankers"]["none"]["probabilities"] is None
    assert tiny["answers"]["passages"] == pytest.approx(sum(r["rerankers"]["tiny"]["passages_sent"] for r in rows) / 2)
    assert (out / "plots" / "cutoff_tradeoff.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "## Cut-offs (means per query)" in md and "| tiny | token_budget 400 |" in md
    assert "passages with P(relevant) >= 0.5, 1 to 2" in md
    # at most one generator call per query, reranker and point (top_n sizes 1, 2, 3; the configured cut-off; the
    # sweep's 6 points for tiny, 3 for none); points that send the same passages share one
    assert len({(q, tuple(p)) for q, p in generate_calls}) <= len(generate_calls) < 2 * (3 + 1 + 6) + 2 * (3 + 1 + 3)


def test_points_that_send_the_same_passages_share_one_generation():
    from rerankforge.eval.measure import generate_counts

    class Fake:
        calls = []

        def generate(self, query, passages, n):
            self.calls.append(n)
            return f"{query}:{passages[:n]}"

    fake = Fake()
    out = generate_counts(fake, "q", ["a", "b", "c"], [1, 3, 2, 2, 5, 3, 0])
    assert fake.calls == [1, 3, 2, 0]  # 5 sends the same 3 passages as 3
    assert {n: g for n, (g, _) in out.items()} == {0: "q:[]", 1: "q:['a']", 2: "q:['a', 'b']",
                                                   3: "q:['a', 'b', 'c']", 5: "q:['a', 'b', 'c']"}


def test_the_default_cutoff_is_the_top_n_as_before(with_answers, tiny_encoder, tiny_cross_encoder, tmp_path,
                                                   generate_calls):
    from rerankforge.eval.generate import ExtractiveGenerator

    out = tmp_path / "eval"
    evaluate(eval_cfg(with_answers, tiny_encoder, tiny_cross_encoder, out))
    summary = json.loads((out / "report.json").read_text())
    assert summary["generate"]["cutoff"] == {"kind": "top_n", "min_probability": 0.5, "token_budget": 1024,
                                             "min_passages": 1, "sweep": {"min_probability": [], "token_budget": []}}
    for entry in summary["rerankers"].values():
        assert "answers_by_cutoff" not in entry and "cutoff" not in entry["answers"]
        assert entry["answers"] == entry["answers_by_top_n"]["2"]
    assert not (out / "plots" / "cutoff_tradeoff.png").exists()
    assert "top 2 passages" in (out / "report.md").read_text()
    generator = ExtractiveGenerator(eval_cfg(with_answers, tiny_encoder, tiny_cross_encoder, out).generate)
    texts = {d["_id"]: f"{d['title']} {d['text']}" for d in map(json.loads, (with_answers / "corpus.jsonl").open())}
    queries = {q["_id"]: q["text"] for q in map(json.loads, (with_answers / "queries.jsonl").open())}
    for row in map(json.loads, (out / "per_query.jsonl").open()):
        for entry in row["rerankers"].values():
            top = entry["top_passages"][:2]
            assert entry["passages_sent"] == 2
            assert entry["answer"] == generator.generate(queries[row["query_id"]], [texts[d] for d in top]).answer
    assert sorted({len(p) for _, p in generate_calls}) == [1, 2, 3]


# --- Pipeline.query --------------------------------------------------------------------------------------------

def pipeline_of(beir_dir, tiny_encoder, model, tmp_path, *overrides):
    from rerankforge.eval.pipeline import Pipeline

    cfg = load_config(EvalConfig, None, [
        f"data.path={beir_dir}", "retrieve.top_k=8", f"first_stage.encoder.name_or_path={tiny_encoder}",
        "rerankers={none: {model: null}, tiny: {model: " + model + ", depth: 6, max_length: 48}}",
        f"generate.token_counter={tiny_encoder}", "generate.top_n=3", f"cache_dir={tmp_path / 'cache'}", *overrides])
    return Pipeline.from_config(cfg)


def test_query_sends_by_probability_and_returns_each_passage_probability(beir_dir, tiny_encoder, tiny_cross_encoder,
                                                                         tmp_path):
    from rerankforge.models.reranker import sigmoid

    model = with_fusion(tiny_cross_encoder, tmp_path / "fused", "rrf", 0.4)
    pipeline = pipeline_of(beir_dir, tiny_encoder, model, tmp_path, "rerankers.tiny.fusion.method=auto",
                           "generate.cutoff.kind=min_probability", "generate.cutoff.min_probability=0")
    cutoff = pipeline.cfg.generate.cutoff
    query = "cat sat protein"
    reranked = pipeline.rerank("tiny", query, pipeline.first_stage(query))
    assert reranked.alone is not None and [d for d, _ in reranked.hits] != [d for d, _ in reranked.alone]
    result = pipeline.query(query, "tiny")
    assert [p["doc_id"] for p in result["passages"]] == reranked.passing[:3]  # the fused order
    logits = pipeline.rerankers["tiny"].score(query, [p["text"] for p in result["passages"]], raw=True)
    assert [p["probability"] for p in result["passages"]] == pytest.approx([sigmoid(x) for x in logits], abs=1e-6)
    assert result["cutoff"] == {"kind": "min_probability", "passages": 3, "passage_tokens": None}
    # a calibrated reranker's own probability decides, not the sigmoid
    cutoff.min_probability = 0.5
    pipeline.rerankers["tiny"].probability = lambda logit: 0.49
    assert len(pipeline.query(query, "tiny")["passages"]) == 1  # min_passages
    pipeline.rerankers["tiny"].probability = lambda logit: 0.5
    assert len(pipeline.query(query, "tiny")["passages"]) == 3  # generate.top_n
    assert [p["probability"] for p in pipeline.query(query, "tiny", top_n=2)["passages"]] == [0.5, 0.5]
    none = pipeline.query(query, "none")
    assert none["cutoff"]["kind"] == "top_n" and [p["probability"] for p in none["passages"]] == [None] * 3


def test_query_fills_a_token_budget_counted_like_the_prompt(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path):
    from rerankforge.eval.generate import TokenCounter, passage_blocks

    count = TokenCounter(tiny_encoder)
    pipeline = pipeline_of(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path, "generate.cutoff.kind=token_budget",
                           "generate.cutoff.token_budget=100")
    query = "cat sat protein"
    result = pipeline.query(query, "tiny")
    texts = [p["text"] for p in result["passages"]]
    everything = [pipeline.texts[p] for p in pipeline.rerank("tiny", query, pipeline.first_stage(query)).passages]
    tokens = [count(b) for b in passage_blocks(pipeline.cfg.generate, everything)]
    fits = max(k for k in range(1, len(tokens) + 1) if sum(tokens[:k]) <= 100)
    assert texts == everything[:fits] and 3 < fits < len(everything)  # generate.top_n=3 does not cap it
    assert result["cutoff"] == {"kind": "token_budget", "passages": fits, "passage_tokens": sum(tokens[:fits])}
    assert result["prompt_tokens"] > result["cutoff"]["passage_tokens"]
    assert len(pipeline.query(query, "tiny", top_n=2)["passages"]) == 2  # a request's top_n caps it
