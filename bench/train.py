"""Training speed and quality: rerankforge vs sentence-transformers' CrossEncoderTrainer, same recipe.

    python bench/train.py [--mined runs/mine/scifact] [--data ../shared/data/scifact] [--steps 230]
                          [--batch-size 4] [--group-size 8] [--max-length 256] [--lr 2e-4] [--test-queries 300]

Both sides start from all-MiniLM-L6-v2 with a fresh one-logit head and train for the same steps on the same
groups (1 positive + G-1 mined negatives) with listwise softmax cross-entropy on raw logits (for
sentence-transformers: its MultipleNegativesRankingLoss with in-batch negatives off, scale=1, no activation), the same
batch, max_length, learning rate, warmup and seed. Each side runs in its own process; then both checkpoints
rerank the same first-stage top-100 of the SciFact test queries with the same scoring code.
Prints pairs/s (training only), peak RSS, test nDCG@10 of both and of the first stage, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, data_dir

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def groups(args):
    from datasets import load_from_disk

    rows = load_from_disk(str(Path(args.mined) / "dataset"))
    return [r for r in rows if len(r["negatives"]) >= args.group_size - 1]


def train_ours(args, out: Path) -> float:
    from rerankforge.core.config import load_config
    from rerankforge.train.config import TrainConfig
    from rerankforge.train.run import main

    cfg = load_config(TrainConfig, None, [
        f"model.name_or_path={MODEL}", f"model.max_length={args.max_length}", f"data.train={args.mined}",
        f"data.group_size={args.group_size}", f"batch_size={args.batch_size}", f"max_steps={args.steps}",
        f"optim.lr={args.lr}", "optim.warmup_ratio=0.1", f"output_dir={out}", f"seed={args.seed}"])
    start = time.perf_counter()
    main(cfg)
    return time.perf_counter() - start


def train_theirs(args, out: Path) -> float:
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

    from rerankforge.models.resolve import resolve_model

    rows = groups(args)
    columns = {"query": [r["query"] for r in rows], "positive": [r["positive"] for r in rows]}
    for j in range(args.group_size - 1):
        columns[f"negative_{j + 1}"] = [r["negatives"][j] for r in rows]
    class HardNegativesOnly(MultipleNegativesRankingLoss):
        """The peer's own loss with its in-batch negatives switched off: groups of 1 + G-1, as on our side."""

        def get_in_batch_negatives(self, anchors, candidates):
            return iter(())

    model = CrossEncoder(resolve_model(MODEL).path, num_labels=1, max_length=args.max_length)
    loss = HardNegativesOnly(model, num_negatives=None, scale=1.0, activation_fn=None)
    training_args = CrossEncoderTrainingArguments(
        output_dir=str(out / "trainer"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, warmup_steps=int(0.1 * args.steps), lr_scheduler_type="linear", max_grad_norm=1.0, weight_decay=0.01,
        seed=args.seed, save_strategy="no", report_to="none", logging_steps=50, use_cpu=True)
    trainer = CrossEncoderTrainer(model=model, args=training_args, train_dataset=Dataset.from_dict(columns), loss=loss)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model.save_pretrained(str(out / "final"))
    return seconds


def test_ndcg(args, final: Path) -> tuple[float, float]:
    """nDCG@10 of ``final`` reranking the mining encoder's top-100 for the test queries, and the first stage's."""
    from rerankforge.core.metrics import evaluate_run
    from rerankforge.models.reranker import Reranker
    from rerankforge.train.evaluate import build_dev_set

    manifest = json.loads((Path(args.mined) / "manifest.json").read_text())
    dev = build_dev_set(args.mined, args.data, "test", 100, args.test_queries, manifest["config"])
    reranker = Reranker(str(final), max_length=args.max_length, batch_size=50)
    run: dict[str, dict[str, float]] = {}
    for query_id in dev.qrels:
        pairs = [p for p in dev.pairs if p[0] == query_id]
        scores = reranker.score(pairs[0][2], [p[3] for p in pairs], raw=True) if pairs else []
        run[query_id] = {p[1]: s for p, s in zip(pairs, scores)}
    return evaluate_run(dev.qrels, run, ["ndcg@10"])["ndcg@10"], evaluate_run(dev.qrels, dev.first_stage,
                                                                               ["ndcg@10"])["ndcg@10"]


def child(side: str, args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        seconds = (train_ours if side == "rerankforge" else train_theirs)(args, out)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # training peak, before evaluation
        ndcg, first = test_ndcg(args, out / "final")
    pairs = args.steps * args.batch_size * args.group_size
    print("BENCH " + json.dumps({"seconds": seconds, "pairs_per_s": pairs / seconds, "peak_rss_mb": rss,
                                 "ndcg@10": ndcg, "first_stage_ndcg@10": first}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mined", default=str(ROOT / "runs" / "mine" / "scifact"))
    parser.add_argument("--data", default=str(data_dir() / "scifact"))
    parser.add_argument("--steps", type=int, default=230)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--test-queries", type=int, default=None)
    parser.add_argument("--side", choices=["rerankforge", "sentence-transformers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return child(args.side, args)
    results = {}
    for side in ("sentence-transformers", "rerankforge"):
        argv = [a for a in sys.argv[1:]]
        out = subprocess.run([sys.executable, __file__, *argv, "--side", side], capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("BENCH ")]
        if out.returncode != 0 or not lines:
            sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
        results[side] = json.loads(lines[-1][len("BENCH "):])
    print(f"steps {args.steps}, {args.batch_size} groups of {args.group_size}, max_length {args.max_length}, "
          f"test queries: {args.test_queries or 'all'}")
    print("| trainer | train s | pairs/s | peak RSS MB | test nDCG@10 | first stage nDCG@10 |")
    print("|---|---|---|---|---|---|")
    for side, r in results.items():
        print(f"| {side} | {r['seconds']:.0f} | {r['pairs_per_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['ndcg@10']:.4f} "
              f"| {r['first_stage_ndcg@10']:.4f} |")
    ours, theirs = results["rerankforge"], results["sentence-transformers"]
    print(f"\nratio rerankforge / sentence-transformers: pairs/s {ours['pairs_per_s'] / theirs['pairs_per_s']:.2f}x "
          f"(goal >= 1.5x), nDCG@10 {ours['ndcg@10'] - theirs['ndcg@10']:+.4f}, peak RSS "
          f"{ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
