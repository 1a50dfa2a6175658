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
    ev.retrieve.encoder = copy.deepcopy(mine.encoder)  # the first stage the reranker was trained behind
    spec = ev.rerankers.get("finetuned") or RerankerConfig(depth=ev.retrieve.top_k)
    spec.model = str(out / "train" / "final")
    ev.rerankers = {**{k: v for k, v in ev.rerankers.items() if k != "finetuned"}, "finetuned": spec}
    return mine, train, ev


def stage_keys(mine: MineConfig, train: TrainConfig, ev: EvalConfig, data: Path) -> dict[str, str]:
    """One key per stage: its resolved config plus the key of what it reads, so a change reruns it and all after."""
    inputs = hash_strings([hash_path(p) for p in sorted(data.rglob("*")) if p.is_file()])
    keys = {"mine": hash_strings([inputs, dump_yaml(mine)])}
    keys["train"] = hash_strings([keys["mine"], dump_yaml(train)])
    keys["eval"] = hash_strings([keys["train"], inputs, dump_yaml(ev)])
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
        run_stage(name, mine, train, ev, out)
        stages[name] = {"seconds": time.perf_counter() - start, "reused": False}
        state[name] = {"key": keys[name], "seconds": stages[name]["seconds"]}
        out.mkdir(parents=True, exist_ok=True)
        write_json(state_file, state)  # after each stage: an interruption keeps what finished
    report = json.loads(outputs["eval"].read_text())
    return {"stages": stages, "data": str(data), "report": str(Path(ev.output_dir) / "report.md"),
            "checkpoint": str(outputs["train"]), "first_stage": report["first_stage"]["metrics"],
            "reranked": report["rerankers"]["finetuned"]["metrics"], "depth": report["rerankers"]["finetuned"]["depth"]}


def summary_table(result: dict) -> str:
    keys = ("ndcg@10", "mrr@10", "recall@10")
    rows = ["| run | nDCG@10 | MRR@10 | Recall@10 |", "|---|---|---|---|",
            "| first stage (bi-encoder + FAISS) | " + " | ".join(f"{result['first_stage'][k]:.4f}" for k in keys) + " |",
            f"| + fine-tuned reranker (top-{result['depth']}) | " +
            " | ".join(f"{result['reranked'][k]:.4f}" for k in keys) + " |", ""]
    for name, stage in result["stages"].items():
        rows.append(f"{name:>5}: {stage['seconds'] / 60:5.1f} min" + (" (reused from an earlier run)" if stage["reused"] else ""))
    total = sum(s["seconds"] for s in result["stages"].values() if not s["reused"])
    rows += [f"total this run: {total / 60:.1f} min", f"checkpoint: {result['checkpoint']}",
             f"report: {result['report']} (+ report.json, plots/)"]
    return "\n".join(rows)
