"""An LLM judge as a row of `rerankforge eval` (``kind: llm``): its quality beside the cross-encoder and the first
stage, with latency, tokens per query and the cost of 1,000 queries at the configured prices."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import eval_cfg

from rerankforge.core.config import load_config
from rerankforge.eval.config import EvalConfig, check_eval_config
from rerankforge.eval.report import read_trec
from rerankforge.eval.run import evaluate
from rerankforge.models.llm import NextToken

PROMPT_TOKENS = 100


class KnowingLLM:
    """Answers yes (P = 0.95) exactly for the query's labelled passage, as a strong judge would."""

    def __init__(self, gold: dict[str, str]):
        self.gold = gold  # query text -> the text of its relevant passage

    def next_token(self, prompts, top=20):
        out = []
        for prompt in prompts:
            query = re.search(r"Query: (.*)\n", prompt).group(1)
            passage = prompt.split("Passage: ", 1)[1]
            p = 0.95 if self.gold[query] in passage else 0.05
            out.append(NextToken({"yes": math.log(p), "no": math.log(1 - p)}, "yes", PROMPT_TOKENS))
        return out


@pytest.fixture
def judged(monkeypatch, beir_dir) -> dict[str, str]:
    """A judge that knows the test labels; returns them (query id -> its relevant doc id)."""
    read = lambda name: [json.loads(line) for line in (beir_dir / name).read_text().splitlines()]  # noqa: E731
    queries = {q["_id"]: q["text"] for q in read("queries.jsonl")}
    docs = {d["_id"]: d["text"] for d in read("corpus.jsonl")}
    labels = dict(row.split("\t")[:2] for row in (beir_dir / "qrels/test.tsv").read_text().splitlines()[1:])
    gold = {queries[q]: docs[d] for q, d in labels.items()}
    monkeypatch.setattr("rerankforge.models.judge.load_llm", lambda cfg: KnowingLLM(gold))
    return labels


def llm_row(*extra):
    return ("rerankers.judge={kind: llm, depth: 10, llm: {kind: openai, base_url: 'http://127.0.0.1:9/v1', model: m, "
            "price_per_million_prompt_tokens: 2.5, price_per_million_completion_tokens: 10}}", *extra)


def test_the_llm_row_reports_quality_latency_tokens_and_cost(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path,
                                                             judged):
    out = tmp_path / "eval"
    evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, out, "generate.kind=none", "plots=false",
                      *llm_row()))
    summary = json.loads((out / "report.json").read_text())
    judge = summary["rerankers"]["judge"]
    assert judge["kind"] == "llm" and judge["model"] == "m" and judge["fusion"] is None
    first = read_trec(out / "runs" / "first_stage.trec")
    reachable = [judged[q] in sorted(first[q], key=first[q].get)[-10:] for q in judged]
    assert judge["metrics"]["ndcg@10"] == pytest.approx(sum(reachable) / len(reachable))  # it puts them first
    llm = judge["llm"]
    assert llm["prompt_tokens_per_query"] == 10 * PROMPT_TOKENS and llm["completion_tokens_per_query"] == 10
    assert llm["cost_per_1000_queries"] == pytest.approx(1000 * (1000 * 2.5 + 10 * 10) / 1e6)
    assert llm["calls"] == 20 and llm["cached"] == 0 and sum(llm["failures"].values()) == 0
    assert set(judge["vs_best_first_stage"]["ndcg@10"]) >= {"delta", "p_value"}
    assert judge["latency_ms"]["rerank"]["p50"] > 0
    md = (out / "report.md").read_text()
    section = md.split("## LLM as judge")[1].split("\n## ")[0]
    assert f"| judge | m | {judge['metrics']['ndcg@10']:.4f} |" in section and "$2.60" in section
    assert "0 of 20" in section
    assert "| tiny | " in section and "- (local)" in section and "| first stage: " in section
    assert summary["main_reranker"] == "tiny"  # the report is about the cross-encoder, the judge sits beside it


def test_a_second_eval_answers_from_the_journal_and_says_so(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path,
                                                            judged):
    for run in ("a", "b"):
        evaluate(eval_cfg(beir_dir, tiny_encoder, tiny_cross_encoder, tmp_path / run, "generate.kind=none",
                          "plots=false", f"cache_dir={tmp_path / 'cache'}", *llm_row()))
    llm = json.loads((tmp_path / "b" / "report.json").read_text())["rerankers"]["judge"]["llm"]
    assert llm["calls"] == 0 and llm["cached"] == 20
    assert llm["prompt_tokens_per_query"] == 10 * PROMPT_TOKENS  # what the answers cost when they were asked
    assert "judge 20 calls" in (tmp_path / "b" / "report.md").read_text()


def test_llm_rows_are_checked_before_anything_runs(beir_dir):
    cfg = load_config(EvalConfig, None, [f"data.path={beir_dir}", "rerankers.j.kind=llm",
                                         "rerankers.j.fusion.method=interpolation", "rerankers.j.llm.mode=listwise",
                                         "rerankers.j.llm.step=30"])
    problems = check_eval_config(cfg)
    assert any("rerankers.j.llm.kind=transformers needs rerankers.j.llm.model" in p for p in problems)
    assert any("kind=llm reranks alone" in p for p in problems)
    assert any("rerankers.j.llm: listwise needs 1 <= step < window" in p for p in problems)
