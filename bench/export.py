"""Start-up cost of an OpenVINO int8 reranker: convert and calibrate at every load, or load `rerankforge export`'s folder.

    python bench/export.py --model runs/bench-quality/scifact/train/final --export runs/export/scifact-int8
                           [--calibration runs/quickstart/mine] [--repeats 3]

The exported folder must come from `rerankforge export --model MODEL --quantize int8` with the same calibration
set (its default: the model's training set). Each way is loaded `repeats` times in alternating order (the best
time counts); then both score the same 200 calibration pairs and the largest logit difference is printed.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    from rerankforge.models.openvino_backend import load_calibration_pairs
    from rerankforge.models.reranker import Reranker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/bench-quality/scifact/train/final")
    parser.add_argument("--export", default="runs/export/scifact-int8")
    parser.add_argument("--calibration", default="runs/quickstart/mine")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    loaders = {"convert + calibrate at load": lambda: Reranker(args.model, device="cpu", backend="openvino",
                                                               quantize="int8", calibration=args.calibration),
               "exported folder": lambda: Reranker(args.export, device="cpu", backend="openvino", quantize="int8")}
    best, models = {name: float("inf") for name in loaders}, {}
    for _ in range(args.repeats):
        for name, load in loaders.items():
            start = time.perf_counter()
            models[name] = load()
            best[name] = min(best[name], time.perf_counter() - start)
    pairs = load_calibration_pairs(args.calibration, 200)
    scores = {name: model.score_pairs(pairs, raw=True) for name, model in models.items()}
    names = list(loaders)
    gap = max(abs(a - b) for a, b in zip(scores[names[0]], scores[names[1]]))
    print("| load | best of %d (s) | x exported |" % args.repeats)
    print("|---|---|---|")
    for name in names:
        print(f"| {name} | {best[name]:.2f} | {best[name] / best[names[1]]:.1f} |")
    print(f"\nlargest logit difference over {len(pairs)} pairs: {gap:.2e}")


if __name__ == "__main__":
    main()
