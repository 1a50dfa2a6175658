"""Can an LLM pick the first stage from unlabelled questions? Query likelihood as the judge, against the labels.

    python bench/llm_pick.py --data ../shared/data/scifact --queries 60 --pool 5
    python bench/llm_pick.py --data runs/bench/scifact-typos --queries 60 --pool 3   # bench/lexical_mismatch.py
    python bench/llm_pick.py --data runs/bench/scifact-typos --queries 300 --pool 10 \
        --reranker runs/exp34/sf-cold/train/final                                    # the cold-start checkpoint

A user without labels may still have real questions (a query log). For ``--queries`` of them (a seeded sample of
``--split``; their labels are used only to score the pick), BM25 and dense each retrieve; the union of their top
``--pool`` passages is ranked by SmolLM2-135M-Instruct's mean log-probability of the question given the passage
(UPR: Sachan et al., 2022, "Improving passage retrieval with zero-shot question generation"), and its first passage
is taken as the relevant one. With ``--reranker``, the judge is a cross-encoder checkpoint instead (the cold-start
reranker trained on synthetic questions behind hybrid, which sees the log only after training). Each first stage
is then scored against these pseudo-labels and against the real labels: the pick is right when both put the same
first stage on top.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

PROMPT = "Read the passage and write one question that it answers. Reply with the question only.\n\nPassage: "


def question_likelihood(llm, question: str, passages: list[str]) -> list[float]:
    """Mean log-probability of ``question``'s tokens after the synth prompt for each passage (first 120 words)."""
    import torch

    tok = llm.tokenizer
    asked = tok(question, add_special_tokens=False)["input_ids"]
    prompts = [tok(tok.apply_chat_template([{"role": "user", "content": PROMPT + " ".join(p.split()[:120])}],
                                           tokenize=False, add_generation_prompt=True),
                   add_special_tokens=False)["input_ids"] for p in passages]
    rows = [p + asked for p in prompts]
    width = max(map(len, rows))
    ids = torch.tensor([r + [tok.pad_token_id or 0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.inference_mode():
        logits = llm.model(input_ids=ids.to(llm.device), attention_mask=mask.to(llm.device)).logits.float().cpu()
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    return [logp[i, len(p) - 1:len(p) + len(asked) - 1].mean().item() for i, p in enumerate(prompts)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a BEIR folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--pool", type=int, default=5, help="top passages of BM25 and of dense the LLM ranks")
    parser.add_argument("--reranker", help="a cross-encoder checkpoint as the judge instead of SmolLM2")
    args = parser.parse_args(argv)
    import lexical_mismatch as lm

    from rerankforge.core.metrics import per_query, untied
    from rerankforge.data_prep.config import LLMConfig
    from rerankforge.models.llm import SMOLLM2, SMOLLM2_GGUF, TransformersLLM

    qrels, texts = lm.load(args.data, "qrels", args.split), lm.load(args.data, "queries")
    query_ids = sorted(q for q in qrels if q in texts)
    query_ids = sorted(random.Random(0).sample(query_ids, min(args.queries, len(query_ids))))
    stage, corpus = lm.first_stage(args.data)
    hits = stage.hits_all([texts[q] for q in query_ids], 100)
    if args.reranker:
        from rerankforge.models.reranker import Reranker

        judge = Reranker(args.reranker)
    else:
        llm = TransformersLLM(LLMConfig(model=SMOLLM2, gguf_file=SMOLLM2_GGUF))
    start, pseudo = time.perf_counter(), {}
    for i, query_id in enumerate(query_ids):
        pool = list(dict.fromkeys(d for m in ("bm25", "dense") for d, _ in hits[m][i][:args.pool]))
        if args.reranker:
            scores = judge.score(texts[query_id], [corpus[d] for d in pool], raw=True)
        else:
            scores = question_likelihood(llm, texts[query_id], [corpus[d] for d in pool])
        pseudo[query_id] = {pool[int(np.argmax(scores))]: 1}
    right = np.mean([next(iter(pseudo[q])) in qrels[q] for q in query_ids])
    judged = "reranker" if args.reranker else "LLM"
    print(f"{args.data.name} {args.split}, {len(query_ids)} questions, pool {args.pool} + {args.pool}: the {judged}'s "
          f"first passage is relevant for {right:.0%} ({time.perf_counter() - start:.0f} s)")
    print("| against | metric | BM25 | dense | hybrid | picks |\n|---|---|---|---|---|---|")
    for name, labels in (("real labels", {q: qrels[q] for q in query_ids}), ("pseudo-labels", pseudo)):
        for metric in ("ndcg@10", "ndcg@3", "mrr@10"):
            means = {m: float(np.mean(list(per_query(labels, {q: untied(h) for q, h in zip(query_ids, hits[m])},
                                                      [metric])[metric].values()))) for m in hits}
            print(f"| {name} | {metric} | {means['bm25']:.4f} | {means['dense']:.4f} | {means['hybrid']:.4f} | "
                  f"{max(means, key=means.get)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
