"""The Python API: every stage as a function, for scripts and notebooks.

    from rerankforge import Reranker, evaluate, mine, train

    mined = mine("configs/data_prep/scifact.yaml", {"output_dir": "runs/mine"})
    trained = train("configs/train/scifact-minilm.yaml", {"data.train": mined.output_dir})
    report = evaluate("configs/eval/scifact.yaml", {"rerankers.finetuned.model": trained.final})
    print(report.metrics["finetuned"]["ndcg@10"])
    Reranker(trained.final).rank("a query", ["a passage", "another passage"])

Each function takes a config: a config object, a YAML file, an example config that ships with the package (the
same path as in a checkout, e.g. ``configs/train/scifact-minilm.yaml``), or None for the defaults; then overrides,
as ``key=value`` strings or a mapping of dotted keys to values. It validates the config as ``rerankforge <command>``
does (every problem at once, before any compute), runs the stage, and returns a small result: the folder it wrote,
its manifest, and metrics where the stage has some. The CLI is a layer over these functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from rerankforge.core.config import COMMAND_SCHEMAS, load_config, packaged_config
from rerankforge.core.modules import attribute

Overrides = Union[Sequence[str], Mapping[str, Any], None]
DEFAULT_CONFIGS = {"quickstart": "quickstart.yaml"}  # used when no config is given


def resolve_config(command: str, config: Any = None, overrides: Overrides = None) -> Any:
    """The config ``rerankforge <command>`` runs with: ``config`` (an instance of its schema, a YAML path or a
    packaged example, or None: the command's packaged default or the schema's defaults) with ``overrides`` on top.

    Raises:
        ConfigError: a file that does not exist, an unknown key (with the nearest valid one), or a bad value.
    """
    schema = attribute(COMMAND_SCHEMAS[command])
    if isinstance(config, schema):
        return load_config(schema, None, overrides or (), base=config)
    if config is None and command in DEFAULT_CONFIGS:
        config = packaged_config(DEFAULT_CONFIGS[command])
    path = packaged_config(config) if config is not None else None
    return load_config(schema, path, overrides or ())


@dataclass
class StageResult:
    """What a stage wrote: ``output_dir`` with its ``manifest.json`` (the resolved config, versions, input hashes
    and counts), and the config it ran with."""

    config: Any
    output_dir: Path

    @property
    def manifest(self) -> dict:
        path = self.output_dir / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@dataclass
class MineResult(StageResult):
    """``dataset()`` loads the training set (a ``datasets.Dataset`` of query, positive, negatives and scores)."""

    @property
    def counts(self) -> dict:
        return self.manifest.get("counts", {})

    def dataset(self):
        from datasets import load_from_disk  # ~1 s to import; only this needs it

        return load_from_disk(str(self.output_dir / "dataset"))


@dataclass
class SynthResult(StageResult):
    """The synthetic queries and qrels, in BEIR's layout: mine with ``data.queries=result.queries``,
    ``data.qrels=result.qrels``."""

    @property
    def queries(self) -> Path:
        return self.output_dir / "queries.jsonl"

    @property
    def qrels(self) -> Path:
        return self.output_dir / "qrels" / "train.tsv"


@dataclass
class TrainResult(StageResult):
    """``final``: the checkpoint (``CrossEncoder(final)`` and ``Reranker(final)`` load it); ``best_dev``: its dev
    nDCG@10, None without a dev split."""

    final: Path = Path()

    @property
    def best_dev(self) -> Optional[float]:
        return self.manifest.get("best_dev_ndcg@10")


@dataclass
class EvalResult(StageResult):
    """``report``: report.md; ``summary``: report.json; ``metrics``: each row's metrics (``{"finetuned":
    {"ndcg@10": ...}}``, fused where the row fuses), with the reranker alone as ``"<name>-alone"``."""

    report: Path = Path()

    @property
    def summary(self) -> dict:
        return json.loads((self.report.parent / "report.json").read_text(encoding="utf-8"))

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        rows = {}
        for name, row in self.summary["rerankers"].items():
            rows[name] = row["metrics"]
            if row.get("alone"):
                rows[f"{name}-alone"] = row["alone"]["metrics"]
        return rows


@dataclass
class QuickstartResult(EvalResult):
    """The quickstart's summary (``summary_table``'s input): each stage's time, the first stage, the checkpoint
    and its figures."""

    stages: Optional[dict] = None
    checkpoint: Path = Path()


def mine(config: Any = None, overrides: Overrides = None) -> MineResult:
    """``rerankforge mine``: a corpus and labelled queries -> hard negatives, a dev split and a manifest."""
    cfg = resolve_config("mine", config, overrides)
    return MineResult(cfg, attribute("rerankforge.data_prep.mine:mine")(cfg))


def synth(config: Any = None, overrides: Overrides = None, llm=None) -> SynthResult:
    """``rerankforge synth``: a corpus without labels -> synthetic queries and qrels. ``llm`` (anything with
    ``complete``) replaces the configured generator."""
    cfg = resolve_config("synth", config, overrides)
    return SynthResult(cfg, attribute("rerankforge.data_prep.synth:synth")(cfg, llm))


def train(config: Any = None, overrides: Overrides = None) -> TrainResult:
    """``rerankforge train``: a mined training set -> a cross-encoder checkpoint, its model card and fusion weight.
    Runs in this process; ``accelerate launch train/run.py`` runs it on several devices."""
    cfg = resolve_config("train", config, overrides)
    final = attribute("rerankforge.train.run:main")(cfg)
    return TrainResult(cfg, Path(cfg.output_dir), final=Path(final))


def evaluate(config: Any = None, overrides: Overrides = None, command: str = "rerankforge.evaluate()") -> EvalResult:
    """``rerankforge eval``: retrieve -> rerank -> generate, each reranker against the best first stage.
    ``command`` is what the report names as the command that produced it."""
    cfg = resolve_config("eval", config, overrides)
    report = attribute("rerankforge.eval.run:evaluate")(cfg, command)
    return EvalResult(cfg, Path(cfg.output_dir), report=Path(report))


def quickstart(config: Any = None, overrides: Overrides = None) -> QuickstartResult:
    """``rerankforge quickstart``: the whole job on your data (default SciFact): mine -> train -> eval."""
    cfg = resolve_config("quickstart", config, overrides)
    summary = attribute("rerankforge.quickstart:quickstart")(cfg)
    return QuickstartResult(cfg, Path(cfg.output_dir), report=Path(summary["report"]), stages=summary,
                            checkpoint=Path(summary["checkpoint"]))


def export(config: Any = None, overrides: Overrides = None) -> StageResult:
    """``rerankforge export``: an OpenVINO copy of a checkpoint that loads without recalibrating."""
    cfg = resolve_config("export", config, overrides)
    return StageResult(cfg, Path(attribute("rerankforge.models.export:export")(cfg)))


def push(config: Any = None, overrides: Overrides = None) -> str:
    """``rerankforge push``: stage, validate and upload a checkpoint to the Hub; returns a one-line summary."""
    return attribute("rerankforge.models.publish:push")(resolve_config("push", config, overrides))


def serve(config: Any = None, overrides: Overrides = None) -> None:
    """``rerankforge serve``: the reranker (and, with ``pipeline``, the whole pipeline) over HTTP until stopped."""
    attribute("rerankforge.serve.app:serve")(resolve_config("serve", config, overrides))
