"""Rerank inference speed and quality: rerankforge's Reranker vs sentence-transformers' CrossEncoder.predict.

    python bench/rerank.py [--model runs/train/scifact-a/final] [--data ../shared/data/scifact] [--queries 60]
                           [--depth 50] [--max-length 256] [--batch-size 32] [--repeats 2]
                           [--calibration-queries 20] [--calibration PATH]
                           [--variants float32,bfloat16,int8,openvino-float32,openvino-int8]

Same model, same candidates (the dense first-stage top-`depth` of the SciFact test queries, all-MiniLM-L6-v2),
one call per query as a deployment makes them, in one process. Variants of ours: float32, bfloat16 weights,
PyTorch dynamic int8, and OpenVINO float32 / static int8 (when `pip install 'rerankforge[openvino]'` is there; the
int8 ranges are calibrated on the first stage's top-10 for SciFact *train* queries, never the test queries). Each
variant is timed `repeats` times after a warm-up, in alternating order; the best time counts. Prints pairs/s, the
ratio to CrossEncoder.predict, and nDCG@10 of each reranked run.
"""

from __future__ import annotations

import argparse
import time

from common import ROOT, data_dir


def candidates(args, split: str = "test"):
    """``(qrels, [(query_id, query, [(doc_id, text), ...]), ...])`` for the first ``args.queries`` test queries."""
    from rerankforge.core.io import resolve_cache_dir
    from rerankforge.core.text import doc_text
    from rerankforge.eval.config import EvalDataConfig
    from rerankforge.eval.data import load_eval_data
    from rerankforge.eval.retrieve import Retriever
    from rerankforge.retrieval.config import FirstStageConfig

    data = load_eval_data(EvalDataConfig(path=args.data, split=split, max_queries=args.queries))
    doc_ids = sorted(data.corpus)
    texts = {d: doc_text(data.corpus[d]) for d in doc_ids}
    retriever = Retriever(FirstStageConfig(method="dense"), args.depth, doc_ids, [texts[d] for d in doc_ids],
                          resolve_cache_dir())
    query_ids = list(data.qrels)
    hits = retriever.search([data.queries[q] for q in query_ids])
    return data.qrels, [(q, data.queries[q], [(d, texts[d]) for d, _ in h]) for q, h in zip(query_ids, hits)]


def calibration_pairs(args) -> list[tuple[str, str]]:
    """In-domain (query, passage) pairs from the train split, for the OpenVINO int8 ranges."""
    train = argparse.Namespace(**{**vars(args), "queries": args.calibration_queries, "depth": 10})
    _, items = candidates(train, split="train")
    return [(query, text) for _, query, docs in items for _, text in docs]


def scorers(args) -> dict:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    from rerankforge.models.reranker import Reranker

    peer = CrossEncoder(args.model, max_length=args.max_length, device="cpu")
    options = {"float32": {}, "bfloat16": {"dtype": torch.bfloat16}, "int8": {"quantize": "int8"},
               "openvino-float32": {"backend": "openvino"},
               "openvino-int8": {"backend": "openvino", "quantize": "int8"}}
    chosen = [v.strip() for v in args.variants.split(",")]
    unknown = sorted(set(chosen) - set(options))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {list(options)}")
    if any(v.startswith("openvino") for v in chosen):
        try:
            import nncf  # noqa: F401
            import openvino  # noqa: F401
        except ImportError:
            print("OpenVINO variants skipped: pip install 'rerankforge[openvino]'")
            chosen = [v for v in chosen if not v.startswith("openvino")]
    calibration = (args.calibration or calibration_pairs(args)) if "openvino-int8" in chosen else None
    ours = {name: Reranker(args.model, max_length=args.max_length, device="cpu", batch_size=args.batch_size,
                           calibration=calibration, **options[name]) for name in chosen}
    table = {"sentence-transformers CrossEncoder.predict (float32)":
             lambda q, docs: peer.predict([(q, d) for d in docs], batch_size=args.batch_size,
                                          show_progress_bar=False).tolist()}
    for name, reranker in ours.items():
        table[f"rerankforge Reranker.score ({name})"] = lambda q, docs, r=reranker: r.score(q, docs)
    return table


def run_once(score, items) -> tuple[float, dict]:
    run, start = {}, time.perf_counter()
    for query_id, query, docs in items:
        values = score(query, [t for _, t in docs])
        run[query_id] = {d: float(s) for (d, _), s in zip(docs, values)}
    return time.perf_counter() - start, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "train" / "scifact-a" / "final"))
    parser.add_argument("--data", default=str(data_dir() / "scifact"))
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", default="float32,bfloat16,int8,openvino-float32,openvino-int8",
                        help="rerankforge variants to time against the peer, comma-separated")
    parser.add_argument("--calibration", default=None,
                        help="OpenVINO int8 calibration: a mined training set (runs/mine/x) or query/passage records; "
                             "default: the first stage's top-10 for --calibration-queries train queries")
    parser.add_argument("--calibration-queries", type=int, default=20, help="train queries for OpenVINO int8")
    args = parser.parse_args()
    import torch

    from rerankforge.core.metrics import evaluate_run

    qrels, items = candidates(args)
    pairs = sum(len(docs) for _, _, docs in items)
    table = scorers(args)
    best, runs = {}, {}
    for name, score in table.items():  # warm-up: first-call allocations, oneDNN kernel selection
        run_once(score, items[:2])
    for repeat in range(args.repeats):
        for name in (list(table) if repeat % 2 == 0 else list(reversed(table))):
            seconds, runs[name] = run_once(table[name], items)
            best[name] = min(best.get(name, float("inf")), seconds)
    peer = next(iter(table))
    print(f"{len(items)} SciFact test queries x top-{args.depth} = {pairs} pairs, max_length {args.max_length}, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}, best of {args.repeats}")
    print("| scorer | seconds | pairs/s | ratio vs peer | nDCG@10 | nDCG@10 - peer |")
    print("|---|---|---|---|---|---|")
    peer_ndcg = evaluate_run(qrels, runs[peer], ["ndcg@10"])["ndcg@10"]
    for name in table:
        ndcg = evaluate_run(qrels, runs[name], ["ndcg@10"])["ndcg@10"]
        print(f"| {name} | {best[name]:.1f} | {pairs / best[name]:.1f} | {best[peer] / best[name]:.2f}x | "
              f"{ndcg:.4f} | {ndcg - peer_ndcg:+.4f} |")


if __name__ == "__main__":
    main()
