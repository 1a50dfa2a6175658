"""``rerankforge quickstart [--data PATH] [key=value ...]``: the whole main job on SciFact, sized for a CPU.

mine the train split → train a reranker (``configs/quickstart.yaml``) → evaluate the first stage against the
fine-tuned reranker on the test split → print a table and the report's path. Each stage writes its usual folder
under ``output_dir``; a stage whose inputs and config are unchanged since it last finished is reused, so an
interrupted quickstart picks up where it stopped.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from rerankforge.data_prep.config import MineConfig
from rerankforge.eval.config import EvalConfig, RerankerConfig
from rerankforge.train.config import TrainConfig
from rerankforge.utils.config import dump_yaml
from rerankforge.utils.io import hash_path, hash_strings, write_json

STAGES = ("mine", "train", "eval")


@dataclass
class QuickstartConfig:
    """The three stage configs; data paths and output folders are wired by the quickstart itself."""

    dataset: str = "scifact"  # BEIR name: --data → $RERANKFORGE_DATA_DIR/<name> → download cache → download
    data: Optional[str] = None
    output_dir: str = "runs/quickstart"
    mine: MineConfig = field(default_factory=MineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def wire(cfg: QuickstartConfig, data: Path) -> tuple[MineConfig, TrainConfig, EvalConfig]:
    """The stage configs with their inputs and outputs pointing at each other under ``cfg.output_dir``."""
    out = Path(cfg.output_dir)
    mine, train, ev = copy.deepcopy(cfg.mine), copy.deepcopy(cfg.train), copy.deepcopy(cfg.eval)
    mine.data.path, mine.output_dir = str(data), str(out / "mine")
    train.data.train, train.output_dir = str(out / "mine"), str(out / "train")
    ev.data.path, ev.output_dir = str(data), str(out / "eval")
    ev.cache_dir = mine.cache_dir
    # the first stage the reranker was trained behind, and that its fusion weight was fitted on (for
    # mining.candidates=auto, the one mining picked: set when eval starts)
    ev.retrieve.method, ev.retrieve.rrf_k = mine.mining.candidates, mine.mining.rrf_k
    ev.retrieve.encoder, ev.retrieve.bm25 = copy.deepcopy(mine.encoder), copy.deepcopy(mine.mining.bm25)
    ev.retrieve.index = copy.deepcopy(mine.index)
    spec = ev.rerankers.get("finetuned") or RerankerConfig(depth=ev.retrieve.top_k)
    spec.model = str(out / "train" / "final")
    ev.rerankers = {**{k: v for k, v in ev.rerankers.items() if k != "finetuned"}, "finetuned": spec}
    return mine, train, ev


def stage_keys(mine: MineConfig, train: TrainConfig, ev: EvalConfig, data: Path) -> dict[str, str]:
    """One key per stage: its resolved config plus the key of what it reads, so a change reruns it and all after."""
    inputs = hash_strings([hash_path(p) for p in sorted(data.rglob("*")) if p.is_file()])
    out = str(Path(mine.output_dir).parent)
    # where the stages write is not what they compute: a quickstart folder moved elsewhere is still reused
    text = {name: dump_yaml(c).replace(out, "<output_dir>") for name, c in (("mine", mine), ("train", train), ("eval", ev))}
    keys = {"mine": hash_strings([inputs, text["mine"]])}
    keys["train"] = hash_strings([keys["mine"], text["train"]])
    keys["eval"] = hash_strings([keys["train"], inputs, text["eval"]])
    return keys


def _run_train(train: TrainConfig, folder: Path) -> None:
    """Training runs as its own process (``python -m rerankforge train``): stages talk through files."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "quickstart-train.yaml"
    config.write_text(dump_yaml(train), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "rerankforge", "train", "--config", str(config)], check=True)


def run_stage(name: str, mine: MineConfig, train: TrainConfig, ev: EvalConfig, out: Path) -> None:
    if name == "mine":
        from rerankforge.data_prep.mine import mine as run_mine

        run_mine(mine)
    elif name == "train":
        _run_train(train, out)
    else:
        from rerankforge.eval.run import evaluate

        evaluate(ev, command="rerankforge quickstart")


def quickstart(cfg: QuickstartConfig) -> dict:
    """Run (or reuse) every stage; returns ``{"stages": {name: {"seconds", "reused"}}, "report": ..., ...}``."""
    from rerankforge.data_prep.download import resolve_dataset

    data = resolve_dataset(cfg.dataset, cfg.data, Path(cfg.mine.cache_dir).expanduser() if cfg.mine.cache_dir else None)
    mine, train, ev = wire(cfg, data)
    out = Path(cfg.output_dir)
    state_file = out / "stages.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    keys, stages = stage_keys(mine, train, ev, data), {}
    outputs = {"mine": Path(mine.output_dir) / "manifest.json", "train": Path(train.output_dir) / "final",
               "eval": Path(ev.output_dir) / "report.json"}
    for number, name in enumerate(STAGES, start=1):
        done = state.get(name, {})
        if done.get("key") == keys[name] and outputs[name].exists():
            print(f"[{number}/3] {name}: unchanged since its last run, reusing {outputs[name].parent}", flush=True)
            stages[name] = {"seconds": done["seconds"], "reused": True}
            continue
        print(f"[{number}/3] {name} ...", flush=True)
        start = time.perf_counter()
        if name == "eval":  # mining.candidates=auto: eval reranks the first stage mining picked
            picked = json.loads(outputs["mine"].read_text())["config"]["mining"]["candidates"]
            ev.retrieve.method = picked
        run_stage(name, mine, train, ev, out)
        stages[name] = {"seconds": time.perf_counter() - start, "reused": False}
        state[name] = {"key": keys[name], "seconds": stages[name]["seconds"]}
        out.mkdir(parents=True, exist_ok=True)
        write_json(state_file, state)  # after each stage: an interruption keeps what finished
    report = json.loads(outputs["eval"].read_text())
    return {"stages": stages, "data": str(data), "report": str(Path(ev.output_dir) / "report.md"),
            "checkpoint": str(outputs["train"]), "first_stage": report["first_stage"]["method"],
            "first_stages": report["first_stages"], "best_first_stage": report["best_first_stage"],
            "finetuned": report["rerankers"]["finetuned"]}


FIRST_STAGE_NAMES = {"bm25": "BM25 (bm25s, stemmed)", "dense": "dense (bi-encoder + FAISS)",
                     "hybrid": "hybrid (RRF of BM25 and dense)"}


def _verdict(result: dict) -> str:
    """One plain sentence: did the fine-tuned reranker beat the best first stage, significantly?"""
    from rerankforge.eval.report import verdict

    best, entry = result["best_first_stage"], result["finetuned"]
    test = entry["vs_best_first_stage"]["ndcg@10"]
    text = (f"Final ranking vs the best first stage ({best}): nDCG@10 {test['delta']:+.4f}, paired p = "
            f"{test['p_value']:.3g} ({test['wins']} queries better / {test['losses']} worse): "
            f"{verdict(test['delta'], test['p_value'])} it.")
    if test["p_value"] >= 0.05 or test["delta"] <= 0:
        text += " The fine-tuned reranker did not help on this data; see the report for the reranker alone."
    return text


def summary_table(result: dict) -> str:
    keys = ("ndcg@10", "mrr@10", "recall@10")
    entry = result["finetuned"]

    def row(label: str, metrics: dict) -> str:
        return f"| {label} | " + " | ".join(f"{metrics[k]:.4f}" for k in keys) + " |"

    rows = ["| run | nDCG@10 | MRR@10 | Recall@10 |", "|---|---|---|---|"]
    for method, stage in result["first_stages"].items():
        marks = [m for m, on in (("reranked", method == result["first_stage"]),
                                 ("best", method == result["best_first_stage"])) if on]
        rows.append(row(f"first stage: {FIRST_STAGE_NAMES[method]}" + (f" ({', '.join(marks)})" if marks else ""),
                        stage["metrics"]))
    if entry.get("alone"):
        rows.append(row(f"fine-tuned reranker alone (top-{entry['depth']})", entry["alone"]["metrics"]))
    fusion = entry.get("fusion")
    rows.append(row(f"fine-tuned reranker (top-{entry['depth']})" + (
        f" fused with the first stage ({fusion['method']}, alpha {fusion['alpha']:.2f} fitted on dev)" if fusion else ""),
        entry["metrics"]))
    rows += ["", _verdict(result), ""]
    for name, stage in result["stages"].items():
        rows.append(f"{name:>5}: {stage['seconds'] / 60:5.1f} min" + (" (reused from an earlier run)" if stage["reused"] else ""))
    total = sum(s["seconds"] for s in result["stages"].values() if not s["reused"])
    rows += [f"total this run: {total / 60:.1f} min", f"checkpoint: {result['checkpoint']}",
             f"report: {result['report']} (+ report.json, plots/)"]
    return "\n".join(rows)
