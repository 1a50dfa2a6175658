"""Are calibrated scores probabilities? Platt scaling fitted on dev, checked on the held-out test split.

    python bench/calibration.py [--runs runs/bench-quality/scifact runs/bench-quality/covidqa] [--data ../shared/data]

For each quickstart output folder (``bench/quality.py`` writes them: ``train/`` with ``best_dev_run.json``, ``mine/``
with ``dev.jsonl``, ``eval/runs/*.trec``), fits the scale ``rerankforge train`` fits (``models/calibration.py``) on
the kept checkpoint's dev logits, then applies it to the same checkpoint's test-split reranking (its
``<name>-alone.trec``, relevance scores turned back into logits). Prints the expected calibration error (ECE,
10 bins) of the plain sigmoid and of the calibrated probability: on dev out of fold, and on test, which the fit
never saw; plus the Brier score and the mean predicted vs the real share of relevant candidates on test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import data_dir, fitted_dev_run, read_qrels, read_trec_logits

from rerankforge.core.dev_split import DEV_FILE, read_dev
from rerankforge.models.calibration import Calibration, calibrate, expected_calibration_error, labelled_logits, sigmoid


def test_run(folder: Path) -> Path:
    runs = folder / "eval" / "runs"
    alone = sorted(p for p in runs.glob("*-alone.trec"))
    rerankers = [p for p in runs.glob("*.trec") if not p.name.startswith(("first_stage", "none"))]
    return alone[0] if alone else sorted(rerankers)[0]


def measure(folder: Path, data: Path) -> dict:
    manifest = json.loads((folder / "train" / "manifest.json").read_text())
    dev = read_dev(Path(manifest["inputs"]["train"]["path"]) / DEV_FILE)
    fitted = calibrate(dev.qrels, json.loads(fitted_dev_run(folder / "train").read_text()))
    scale = Calibration(fitted["a"], fitted["b"])
    eval_cfg = json.loads((folder / "eval" / "manifest.json").read_text())["config"]
    dataset = Path(eval_cfg["data"]["path"]).name
    qrels = read_qrels(data / dataset / "qrels" / f"{eval_cfg['data'].get('split', 'test')}.tsv")
    run = {q: docs for q, docs in read_trec_logits(test_run(folder)).items() if q in qrels}
    logits, labels, _ = labelled_logits(qrels, run)
    plain, calibrated = [sigmoid(x) for x in logits], [scale.probability(x) for x in logits]
    return {"run": folder.name, "dev_pairs": fitted["dev_pairs"], "dev_relevant": fitted["dev_positives"],
            "a": fitted["a"], "b": fitted["b"], "dev_ece_sigmoid": fitted["ece"]["sigmoid"],
            "dev_ece_calibrated": fitted["ece"]["calibrated"], "test_pairs": len(logits),
            "test_relevant": int(labels.sum()), "test_ece_sigmoid": expected_calibration_error(plain, labels),
            "test_ece_calibrated": expected_calibration_error(calibrated, labels),
            "test_brier_sigmoid": float(np.mean((np.asarray(plain) - labels) ** 2)),
            "test_brier_calibrated": float(np.mean((np.asarray(calibrated) - labels) ** 2)),
            "test_mean_sigmoid": float(np.mean(plain)), "test_mean_calibrated": float(np.mean(calibrated)),
            "test_share_relevant": float(labels.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["runs/bench-quality/scifact", "runs/bench-quality/covidqa"])
    parser.add_argument("--data", default=str(data_dir()))
    args = parser.parse_args()
    rows = [measure(Path(folder), Path(args.data)) for folder in args.runs]
    print("| run | dev pairs (relevant) | a, b | dev ECE sigmoid → calibrated (out of fold) | test pairs (relevant) "
          "| test ECE sigmoid → calibrated (ratio) | test Brier sigmoid → calibrated | test mean P: sigmoid, "
          "calibrated, real |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['dev_pairs']} ({r['dev_relevant']}) | {r['a']:.3f}, {r['b']:.3f} | "
              f"{r['dev_ece_sigmoid']:.4f} → {r['dev_ece_calibrated']:.4f} | {r['test_pairs']} ({r['test_relevant']}) | "
              f"{r['test_ece_sigmoid']:.4f} → {r['test_ece_calibrated']:.4f} "
              f"({r['test_ece_calibrated'] / r['test_ece_sigmoid']:.2f}x) | {r['test_brier_sigmoid']:.4f} → "
              f"{r['test_brier_calibrated']:.4f} | {r['test_mean_sigmoid']:.4f}, {r['test_mean_calibrated']:.4f}, "
              f"{r['test_share_relevant']:.4f} |")


if __name__ == "__main__":
    main()
