"""A second round of training whose teacher is the first round's fused ranking, judged on dev only.

    python bench/second_round.py runs/quickstart/mine runs/quickstart/train/final runs/second_round/mine
    rerankforge train --config runs/quickstart/quickstart-train.yaml data.train=runs/second_round/mine \
        loss.teacher=rescore output_dir=runs/second_round/train
    python bench/second_round.py --compare runs/quickstart/train runs/second_round/train

The first command scores every mined group (positive and negatives) with the first-round checkpoint and writes a
copy of the mined folder whose teacher columns (``positive_rescore``, ``negative_rescores``) hold
``weight * z(first-round logits) + z(first-stage teacher)``, each z-scored over the group as ``models.fusion``
interpolates: a soft teacher that knows both the labels the first round learnt and what the first stage knows.
The groups, the dev split and everything else are the first round's, so the only change is the teacher.
``--compare`` prints the dev nDCG@10 of both rounds alone and fused, with paired p-values. Test is never read.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from common import dev_per_query


def fused_teacher(mine: Path, model: str, out: Path, weight: float) -> None:
    import datasets

    from rerankforge.models.fusion import zscore
    from rerankforge.models.reranker import Reranker
    from rerankforge.train.data import first_stage_teacher

    rows = datasets.load_from_disk(str(mine / "dataset"))
    reranker = Reranker(model, max_length=256, dtype="auto")
    pairs = [(r["query"], p) for r in rows for p in (r["positive"], *r["negatives"])]
    start = time.perf_counter()
    logits = reranker.score_pairs(pairs, raw=True, progress=True)
    seconds = time.perf_counter() - start
    lexical = "positive_lexical" in rows.column_names
    teachers, at = [], 0
    for r in rows:
        n = 1 + len(r["negatives"])
        first = first_stage_teacher([r["positive_score"], *r["negative_scores"]],
                                    [r["positive_lexical"], *r["negative_lexical"]] if lexical else None)
        teachers.append(weight * zscore(logits[at:at + n]) + zscore(first))
        at += n
    rows = rows.add_column("positive_rescore", [float(t[0]) for t in teachers])
    rows = rows.add_column("negative_rescores", [[float(x) for x in t[1:]] for t in teachers])
    out.mkdir(parents=True, exist_ok=True)
    rows.save_to_disk(str(out / "dataset"))
    for name in ("dev.jsonl", "config.yaml"):
        shutil.copy(mine / name, out / name)
    manifest = json.loads((mine / "manifest.json").read_text())
    manifest["second_round"] = {"teacher_model": model, "weight": weight, "pairs": len(pairs),
                                "seconds": round(seconds, 1)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    first = np.mean([t[0] > max(t[1:]) for t in teachers])
    print(f"scored {len(pairs)} pairs in {seconds:.0f} s; the teacher ranks the positive first in {first:.0%} "
          f"of {len(teachers)} groups -> {out}")


def compare(first: Path, second: Path) -> None:
    from rerankforge.core.metrics import paired_test

    runs = [dev_per_query({"dir": d, "fusion": json.loads((d / "final" / "fusion.json").read_text())})
            for d in (first, second)]
    print("| dev nDCG@10 | first round | second round | p (second vs first) | second vs first stage |")
    print("|---|---|---|---|---|")
    for kind in ("alone", "fused"):
        a, b = runs[0][kind], runs[1][kind]
        test, first = paired_test(a, b), paired_test(runs[1]["first_stage"], b)
        print(f"| {kind} | {np.mean(list(a.values())):.4f} | {np.mean(list(b.values())):.4f} | "
              f"{test['p_value']:.2f} ({test['delta']:+.4f}) | {first['delta']:+.4f} (p = {first['p_value']:.2f}) |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="MINE MODEL OUT, or with --compare: FIRST_TRAIN SECOND_TRAIN")
    parser.add_argument("--weight", type=float, default=1.0, help="weight of the first round's z-scored logits")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args(argv)
    if args.compare:
        compare(*map(Path, args.paths))
    else:
        mine, model, out = args.paths
        fused_teacher(Path(mine), model, Path(out), args.weight)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
