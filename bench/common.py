"""What the benchmark scripts share: the repository root, the data folder and the helpers more than one script uses.

Every script runs as ``python bench/<name>.py``, which puts ``bench/`` first on the module search path, so ``from
common import ...`` (and a sibling script's import) finds this module with no path edits; none are needed for
``rerankforge`` either: it is installed.

- ``ROOT``: the repository root; ``data_dir()``: the shared data folder (``$RERANKFORGE_DATA_DIR``, else
  ``../shared/data`` beside the repository): where a script's ``--data``/``--data-dir`` has a default, it is this
  folder (or a data set in it), and scale.py reads its corpora there;
- run outputs: ``read_trec_logits``, ``read_qrels`` (calibration, fusion_weight), ``dev_per_query`` (sweep,
  second_round);
- tables: ``stat_cells``, ``print_table`` (seeds, fusion_weight);
- data and runs: ``join_articles`` (long_docs, own_data), ``run_dataset`` (quality, mining_downstream).

Importing it stays cheap (standard library only): a helper imports ``rerankforge`` and its heavy dependencies
inside its own body, so ``--help`` and the scripts that never call it do not pay for them. A helper only one script
uses stays in that script.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from statistics import fmean

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The shared data folder: ``$RERANKFORGE_DATA_DIR``, else ``shared/data`` beside the repository."""
    return Path(os.environ.get("RERANKFORGE_DATA_DIR", ROOT.parent / "shared" / "data"))


def read_trec_logits(path: Path) -> dict[str, dict[str, float]]:
    """A TREC run of sigmoid scores (6 decimals) as logits; scores that rounded to 0 or 1 are clipped."""
    from rerankforge.eval.report import read_trec

    def logit(score: float) -> float:
        p = min(max(score, 5e-7), 1 - 5e-7)
        return math.log(p / (1 - p))

    return {q: {d: logit(score) for d, score in docs.items()} for q, docs in read_trec(path).items()}


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        qrels.setdefault(query_id, {})[doc_id] = int(score)
    return qrels


def fitted_dev_run(train_dir: Path) -> Path:
    """The dev scores a training run fitted its fusion weight and calibration on (``fusion_dev_run.json``; runs
    older than that file fitted on ``best_dev_run.json``, the kept checkpoint's cut-passage scores)."""
    fitted = train_dir / "fusion_dev_run.json"
    return fitted if fitted.exists() else train_dir / "best_dev_run.json"


def dev_per_query(result: dict) -> dict[str, dict[str, float]]:
    """Per-query dev nDCG@10 of the best checkpoint alone, fused at the fitted weight, and of the first stage."""
    import yaml

    from rerankforge.core.dev_split import read_dev
    from rerankforge.core.metrics import per_query
    from rerankforge.models.fusion import fuse_run

    fusion, config = result["fusion"], yaml.safe_load((result["dir"] / "config.yaml").read_text())
    dev = read_dev(Path(config["data"]["train"]) / "dev.jsonl", config["data"]["dev_depth"])
    run = json.loads(fitted_dev_run(result["dir"]).read_text())
    fused = fuse_run(dev.first_stage, run, fusion["method"], fusion["alpha"], fusion["rrf_k"])
    return {name: per_query(dev.qrels, r, ["ndcg@10"])["ndcg@10"]
            for name, r in (("alone", run), ("fused", fused), ("first_stage", dev.first_stage))}


def stat_cells(first: dict[str, float], system: dict[str, float]) -> list[str]:
    """``[mean, delta, p, "wins / losses"]`` of ``system`` against ``first`` (paired t-test), as table cells."""
    from rerankforge.core.metrics import paired_test

    test = paired_test(first, system)
    return [f"{fmean(system.values()):.4f}", f"{test['delta']:+.4f}", f"{test['p_value']:.3g}",
            f"{test['wins']} / {test['losses']}"]


def print_table(title: str, table: list[list[str]]) -> None:
    """``title``, a blank line, then ``table`` (header row first) as Markdown."""
    print(f"{title}\n")
    print("| " + " | ".join(table[0]) + " |\n|" + "---|" * len(table[0]))
    print("\n".join("| " + " | ".join(row) + " |" for row in table[1:]))


def join_articles(source: Path, target: Path) -> Path:
    """A BEIR folder of whole articles: passages ``<article>_<i>`` joined in order, qrels lifted to articles."""
    target.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[tuple[int, dict]]] = {}
    with open(source / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            article, _, index = doc["_id"].rpartition("_")
            parts.setdefault(article, []).append((int(index), doc))
    with open(target / "corpus.jsonl", "w", encoding="utf-8") as out:
        for article, items in sorted(parts.items()):
            items.sort(key=lambda item: item[0])
            text = "\n".join(doc["text"] for _, doc in items)
            out.write(json.dumps({"_id": article, "title": items[0][1].get("title", ""), "text": text}) + "\n")
    (target / "queries.jsonl").write_text((source / "queries.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    (target / "qrels").mkdir(exist_ok=True)
    for split in ("train", "test"):
        rows = (source / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        lifted = dict.fromkeys(f"{q}\t{d.rpartition('_')[0]}\t{s}" for q, d, s in (r.split("\t") for r in rows[1:]))
        (target / "qrels" / f"{split}.tsv").write_text("\n".join([rows[0], *lifted]) + "\n", encoding="utf-8")
    return target


def run_dataset(args, name: str) -> dict:
    from rerankforge.core.config import load_config
    from rerankforge.quickstart import QuickstartConfig, quickstart

    cfg = load_config(QuickstartConfig, args.recipe, [f"dataset={name}", f"data={Path(args.data_dir) / name}",
                                                       f"output_dir={Path(args.out) / name}", *args.overrides])
    return quickstart(cfg)
