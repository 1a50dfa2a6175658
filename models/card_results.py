"""The model card's evaluation results: ``huggingface_hub.EvalResult`` rows from a training run's dev metrics and
from ``rerankforge eval`` reports, and the Markdown tables drawn from them.

Each figure is one ``EvalResult`` of task ``text-ranking`` on one data set and split. Its ``metric_config`` names
the ranking it measures: ``first_stage`` (the candidates as retrieved), ``reranked`` (this model's order of the
first stage's top candidates) or ``fused`` (its scores fused with the first stage's); ``metric_name`` says the same
in words, with the first stage, the depth and the fusion weight.

The card's ``model-index`` holds only this model's own results (``reranked``); the first stage and the fused
ranking are the baselines and the pipeline, so they stay in the card's text and in ``eval_results.json`` beside it,
from which the tables and the measured limitations are drawn.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

from huggingface_hub import EvalResult

from rerankforge.core.errors import InputError

TASK_TYPE, TASK_NAME = "text-ranking", "Reranking"
VARIANTS = ("first_stage", "reranked", "fused")
RESULTS_HEADING = "## Evaluation results"
LIMITATIONS_HEADING = "## Intended use and limitations"
RESULTS_FILE = "eval_results.json"  # every figure, baselines included: the tables' source
OWN = "reranked"
NO_RESULTS = ("No evaluation is recorded yet. Train with a dev split (`data.dev: mined` after mining with "
              "`data.dev_fraction` > 0, or `data.dev` set to a BEIR folder), or evaluate the checkpoint with "
              "`rerankforge eval` and add its report: `rerankforge push ... --eval-report runs/.../eval/report.json`.\n")

# Local data folder names -> Hub dataset ids, for the card's `datasets` metadata and its model-index.
HUB_DATASETS = {"scifact": "BeIR/scifact", "nfcorpus": "BeIR/nfcorpus", "fiqa": "BeIR/fiqa",
                "trec-covid": "BeIR/trec-covid", "arguana": "BeIR/arguana", "scidocs": "BeIR/scidocs",
                "covidqa": "deepset/covid_qa_deepset"}
PRETTY = {"ndcg": "nDCG", "mrr": "MRR", "recall": "Recall", "map": "MAP", "precision": "P", "hits": "Hits"}
METRIC_KEY = re.compile(r"^[a-z_]+(@\d+)?$")


class CardError(InputError, ValueError):
    """An eval report or checkpoint the card cannot take results from; the message names the file and the fix."""


def hub_dataset(folder: Optional[str]) -> Optional[str]:
    """The Hub id of a data folder when its name is a known data set, else the folder name (None for none)."""
    name = Path(folder or "").name.lower()
    return HUB_DATASETS.get(name, name) if name else None


def metric_type(key: str) -> str:
    """``ndcg@10`` -> ``ndcg_at_10``: the model-index spelling of a rerankforge metric."""
    return key.replace("@", "_at_")


def metric_label(key: str) -> str:
    """``ndcg@10`` -> ``nDCG@10``, ``map`` -> ``MAP``."""
    name, _, cut = key.partition("@")
    return PRETTY.get(name, name) + (f"@{cut}" if cut else "")


def results(dataset_type: str, dataset_name: str, split: str, runs: dict[str, tuple[str, dict]]) -> list[EvalResult]:
    """One ``EvalResult`` per metric of each run; ``runs`` maps a variant of ``VARIANTS`` to ``(how, metrics)``,
    ``how`` the words after the variant in ``metric_name`` (e.g. ``"hybrid"`` -> ``nDCG@10, first stage (hybrid)``).
    """
    rows = []
    for variant in VARIANTS:
        if variant not in runs:
            continue
        how, metrics = runs[variant]
        words = variant.replace("_", " ") + (f" ({how})" if how else "")
        rows += [EvalResult(task_type=TASK_TYPE, task_name=TASK_NAME, dataset_type=dataset_type,
                            dataset_name=dataset_name, dataset_split=split, metric_type=metric_type(key),
                            metric_value=float(value), metric_name=f"{metric_label(key)}, {words}",
                            metric_config=variant)
                 for key, value in metrics.items() if METRIC_KEY.match(key) and isinstance(value, (int, float))]
    return rows


def dev_results(cfg, mine_manifest: dict, metrics: list[dict], fusion: Optional[dict]) -> list[EvalResult]:
    """The dev figures of the kept checkpoint (the evaluation with the best dev nDCG@10): first stage, reranked
    and, with a fitted fusion weight, fused. Empty when training evaluated nothing on dev."""
    evals = [m for m in metrics if "dev/ndcg@10" in m]
    if not evals:
        return []
    kept = max(evals, key=lambda m: m["dev/ndcg@10"])
    mine = mine_manifest.get("config", {})
    data = mine.get("data", {})
    first = (fusion or {}).get("first_stage", {}).get("method") or mine.get("first_stage", {}).get("method")
    depth = cfg.data.dev_depth
    if cfg.data.dev == "mined":  # mining stored each dev query's top data.dev_depth; training reads at most that
        depth = min(depth, data.get("dev_depth") or depth)
        folder = data.get("path") or data.get("corpus")
        held_out = mine_manifest.get("counts", {}).get("queries_dev")
        # queries of the training split that training never saw: not the data set's own dev split
        split = data.get("split") or "train"
        name = f"{Path(folder or 'training data').name}: {held_out or 'the'} {split} queries held out of training"
    else:
        folder, split = cfg.data.dev, cfg.data.dev_split
        name = f"{Path(folder).name} {split}"
    runs = {"first_stage": (first, {k[len("dev/first_stage_"):]: v for k, v in kept.items()
                                    if k.startswith("dev/first_stage_")}),
            "reranked": (f"top-{(fusion or {}).get('depth') or depth} of {first}, step {kept.get('step')}",
                         {k[len("dev/"):]: v for k, v in kept.items()
                          if k.startswith("dev/") and not k.startswith("dev/first_stage_")})}
    if fusion:
        metric = fusion.get("metric", "ndcg@10")
        runs["fused"] = (f"{fusion['method']}, alpha {fusion['alpha']:.2f}",
                         {metric: fusion["methods"][fusion["method"]][metric]})
    return results(hub_dataset(folder) or "unknown", name, split, runs)


def _same_folder(model: str, checkpoint: Path) -> bool:
    """Whether a report's ``model`` is ``checkpoint``: the same folder, or (a relative path, written where eval
    ran) the trailing part of its path."""
    path = Path(model).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve() == checkpoint.resolve()
    parts = path.parts
    return len(parts) > 0 and checkpoint.resolve().parts[-len(parts):] == parts


def pick_reranker(report: dict, report_path: Path, checkpoint: Path, name: Optional[str] = None) -> tuple[str, dict]:
    """``(name, entry)`` of the report's reranker that is ``checkpoint`` (or is called ``name``).

    Raises:
        CardError: no such reranker, naming the ones the report has.
    """
    rerankers = report.get("rerankers")
    if not isinstance(rerankers, dict) or not isinstance(report.get("first_stage"), dict):
        raise CardError(f"{report_path} is not a `rerankforge eval` report.json: it has no `rerankers` and "
                        "`first_stage` entries. Pass the report.json an eval run wrote (e.g. runs/.../eval/report.json).")
    found = [(n, e) for n, e in rerankers.items() if isinstance(e, dict) and e.get("model")
             and (n == name if name else _same_folder(str(e["model"]), checkpoint))]
    if not found:
        have = ", ".join(f"{n} ({e.get('model')})" for n, e in rerankers.items() if isinstance(e, dict)) or "none"
        wanted = f"reranker named {name!r}" if name else f"reranker whose model is {checkpoint}"
        raise CardError(f"{report_path} has no {wanted}; its rerankers are: {have}. Pass the report of an eval "
                        "that reranked with this checkpoint (rerankers.<name>.model=<this folder>).")
    return found[0]


def _report_dataset(report: dict, report_path: Path) -> tuple[str, str, str]:
    """``(dataset type, short name, split)`` of the data an eval report measured, from the ``manifest.json``
    written beside it, else from its qrels path (``<folder>/qrels/<split>.tsv``)."""
    manifest = report_path.with_name("manifest.json")
    data = json.loads(manifest.read_text(encoding="utf-8")).get("config", {}).get("data", {}) \
        if manifest.is_file() else {}
    sources = report.get("data", {}).get("sources", {})
    qrels = Path(sources.get("qrels") or "qrels/test.tsv")
    folder = data.get("path") or data.get("corpus") or (
        str(qrels.parent.parent) if qrels.parent.name == "qrels" else str(Path(sources.get("corpus", "")).parent))
    split = data.get("split") or qrels.stem
    return hub_dataset(folder) or "unknown", Path(folder).name or "eval data", split


def report_results(report_path: Path, checkpoint: Path, reranker: Optional[str] = None) -> list[EvalResult]:
    """The figures of ``checkpoint`` in a ``rerankforge eval`` report: the first stage it reranked, the reranker
    alone and, when eval fused it with the first stage, fused; every metric the report has.

    Raises:
        CardError: the file is missing or not an eval report, or has no reranker that is ``checkpoint``.
    """
    report_path = Path(report_path)
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CardError(f"Cannot read the eval report {report_path}: {type(exc).__name__}: {exc}. Pass the "
                        "report.json a `rerankforge eval` run wrote.") from exc
    name, entry = pick_reranker(report, report_path, checkpoint, reranker)
    dataset_type, short, split = _report_dataset(report, report_path)
    first, fused = report["first_stage"], entry.get("fusion")
    try:
        runs = {"first_stage": (first["method"], first["metrics"]),
                "reranked": (f"top-{entry['depth']} of {first['method']}",
                             entry["alone"]["metrics"] if fused else entry["metrics"])}
        if fused:
            runs["fused"] = (f"{fused['method']}, alpha {fused['alpha']:.2f}", entry["metrics"])
    except (KeyError, TypeError) as exc:
        raise CardError(f"{report_path}: reranker {name!r} lacks {exc} (expected first_stage.method/metrics and "
                        "rerankers.<name>.depth/metrics, with alone.metrics when fused). Rerun `rerankforge eval` "
                        "to write a complete report.") from exc
    queries = report.get("data", {}).get("queries")
    label = f"{short} {split}" + (f" ({queries} queries)" if queries else "")
    return results(dataset_type, label, split, runs)


def own_results(rows: list[EvalResult]) -> list[EvalResult]:
    """The rows that measure this model itself (its order of the first stage's candidates): the model-index."""
    return [r for r in rows if r.metric_config == OWN]


def save_results(folder: Path, rows: list[EvalResult]) -> None:
    """Every figure (baselines too) to ``folder/eval_results.json``."""
    keys = ("task_type", "task_name", "dataset_type", "dataset_name", "dataset_split", "metric_type", "metric_value",
            "metric_name", "metric_config")
    (Path(folder) / RESULTS_FILE).write_text(json.dumps([{k: getattr(r, k) for k in keys} for r in rows], indent=1)
                                             + "\n", encoding="utf-8")


def load_results(folder: Path, fallback: list[EvalResult]) -> list[EvalResult]:
    """The figures of ``folder/eval_results.json``; ``fallback`` (the card's model-index) when there is none."""
    path = Path(folder) / RESULTS_FILE
    if not path.is_file():
        return list(fallback)
    try:
        return [EvalResult(**row) for row in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError) as exc:
        raise CardError(f"{path} does not hold evaluation results ({exc}). Delete it and add the eval reports "
                        "again.") from exc


def measured_limits(rows: list[EvalResult], metric: str = "ndcg_at_10") -> list[str]:
    """One sentence per data set and split that has this model's and the first stage's ``metric``: the model alone
    against the first stage it reranks (and fused, when measured), saying when it is below."""
    values: dict[tuple, dict[str, EvalResult]] = {}
    for row in rows:
        if row.metric_type == metric:
            values.setdefault((row.dataset_name, row.dataset_split), {})[row.metric_config] = row
    out = []
    for (name, split), got in values.items():
        if OWN not in got or "first_stage" not in got:
            continue
        alone, first = got[OWN].metric_value, got["first_stage"].metric_value
        where = "below" if alone < first else "above" if alone > first else "level with"
        fused = (f"; fused with the first stage by `fusion.json`: {got['fused'].metric_value:.4f}"
                 if "fused" in got else "")
        out.append(f"- {name} (split `{split}`): alone, {metric_label(metric.replace('_at_', '@'))} "
                   f"{alone:.4f}, {where} its first stage's {first:.4f} "
                   f"({got['first_stage'].metric_name.split(', ', 1)[-1]}){fused}.")
    return out


def merge(existing: list[EvalResult], new: list[EvalResult]) -> list[EvalResult]:
    """``existing`` without the results on the data sets and splits ``new`` covers, then ``new``: adding the
    same report twice leaves one copy."""
    covered = {r.unique_identifier for r in new}
    return [r for r in existing if r.unique_identifier not in covered] + list(new)


def results_markdown(rows: list[EvalResult]) -> str:
    """One table per data set and split: a row per metric, a column per ranking (first stage, reranked, fused)."""
    if not rows:
        return NO_RESULTS
    groups: dict[tuple, list[EvalResult]] = {}
    for row in rows:
        groups.setdefault((row.dataset_name, row.dataset_split), []).append(row)
    out = []
    for (name, split), group in groups.items():
        columns = [v for v in VARIANTS if any(r.metric_config == v for r in group)]
        heads = [next(r.metric_name.split(", ", 1)[-1] for r in group if r.metric_config == v) for v in columns]
        values = {(r.metric_type, r.metric_config): r.metric_value for r in group}
        out += [f"**{name}** (`{group[0].dataset_type}`, split `{split}`)", "",
                "| metric | " + " | ".join(heads) + " |", "|---|" + "---|" * len(columns)]
        for kind in dict.fromkeys(r.metric_type for r in group):
            cells = [f"{values[(kind, v)]:.4f}" if (kind, v) in values else "-" for v in columns]
            out.append(f"| {metric_label(kind.replace('_at_', '@'))} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
