"""``rerankforge quickstart [--data PATH] [key=value ...]``: the whole main job, sized for a CPU (SciFact by default).

(with ``labels=synthetic``: generate training queries for the corpus first, ``rerankforge synth``, and ignore the
train split's labels; ``labels=mixed`` adds the synthetic queries to them) mine the train split → train a reranker
(``configs/quickstart.yaml``) → evaluate the first stage against the fine-tuned reranker on the test split → print a
table (``quickstart_summary.py``) and the report's path. Each stage writes its usual folder
under ``output_dir``; a stage whose inputs and config are unchanged since it last finished is reused, so an
interrupted quickstart picks up where it stopped.

First ``prepare_data`` (``quickstart_data.py``) finds the data in whatever shape it was given and holds out a test
split where it has none. Before any stage runs, ``check_all`` (``quickstart_check.py``) checks every stage's config
and data, the models and packages they load, and the text lengths against the reranker's (cheap: no model weights
are loaded) and reports every problem at once. A stage that fails raises ``StageError``: one message naming the
stage, what it read, the error, and the finished stages a rerun reuses; the traceback goes to
``<output_dir>/<stage>-error.log``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import rerankforge.data_prep.mine as mine_stage
import rerankforge.data_prep.synth as synth_stage
import rerankforge.eval.run as eval_stage
from rerankforge.core.config import ConfigError, dump_yaml, to_dict
from rerankforge.core.errors import ERROR_LOG_ENV, RerankforgeError, exit_code, one_line
from rerankforge.core.io import git_commit, hash_path, hash_strings, versions, write_json
from rerankforge.core.modules import callable_module
from rerankforge.core.problems import DataError, Problem
from rerankforge.data_prep.config import MineConfig, SynthConfig
from rerankforge.data_prep.synth import data_overrides
from rerankforge.eval.config import EvalConfig, RerankerConfig
from rerankforge.models.card import add_eval_results
from rerankforge.quickstart_check import check_all, check_quickstart_config, config_problems
from rerankforge.quickstart_data import (
    SYNTHETIC_FIRST_STAGE,
    Prepared,
    cold_start_note,
    first_stage_reason,
    mines_behind_hybrid,
    prepare_data,
)
from rerankforge.retrieval.download import DatasetNotFoundError
from rerankforge.retrieval.sources import Source
from rerankforge.train.config import TrainConfig


class StageError(RerankforgeError, RuntimeError):
    """A quickstart stage failed. The message is one line: the stage, its input, the error, what to do, the stages
    a rerun reuses and where the traceback is (``log``). ``exit_code``: 2 for bad input, else 1."""

    def __init__(self, message: str, stage: str, log: Optional[Path] = None, exit_code: int = 1):
        super().__init__(message, exit_code=exit_code)
        self.stage, self.log = stage, log


@dataclass
class QuickstartConfig:
    """The stage configs; data paths and output folders are wired by the quickstart itself."""

    dataset: str = "scifact"  # BEIR name: --data → $RERANKFORGE_DATA_DIR/<name> → download cache → download
    # a BEIR folder, a file or saved dataset of sentence-transformers rows ((query, positive[, negative ...])), or a
    # Hugging Face dataset id; used instead of dataset
    data: Optional[str] = None
    corpus: Optional[str] = None  # with queries and qrels: three single files instead of data (all three or none)
    queries: Optional[str] = None  # the queries file that goes with corpus and qrels
    qrels: Optional[str] = None  # the labels file that goes with corpus and queries; a test split is held out of it
    # data without a test split gets one: this share of the labelled queries (seeded), held out of training
    test_fraction: float = 0.2
    output_dir: str = "runs/quickstart"  # every stage's folder goes here (mine/, train/, eval/, ...); reruns reuse them
    # real: train on the data's train split; synthetic (cold start): on queries synth generates for the corpus,
    # ignoring the train labels; mixed: both; auto: real where the data has training labels, else synthetic. All
    # evaluate on the real test split.
    labels: Literal["auto", "real", "synthetic", "mixed"] = "auto"
    # labels=synthetic: train.max_steps for the synthetic set, which is smaller than a real train split
    # (None: train.max_steps)
    synthetic_max_steps: Optional[int] = None
    # labels=synthetic: train.max_epochs, no more passes than this over a small corpus's questions (None: no cap)
    synthetic_max_epochs: Optional[float] = None
    # your users' questions without labels (a query log: BEIR queries .jsonl or .txt, one per line). With
    # labels=synthetic and mine.first_stage.method=auto, eval reranks the first stage whose ranking agrees best with
    # the trained reranker's choices on them (eval/pick.py), instead of hybrid
    query_log: Optional[str] = None
    synth: SynthConfig = field(default_factory=SynthConfig)
    mine: MineConfig = field(default_factory=MineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass
class Plan:
    """The wired stage configs, in the order they run; ``synth`` is None with real labels. ``auto_chunk``: chunking
    was left to the length check (``mine.data.chunking.mode=auto``)."""

    mine: MineConfig
    train: TrainConfig
    eval: EvalConfig
    synth: Optional[SynthConfig] = None
    auto_chunk: bool = False

    def chunk_documents(self) -> None:
        """Split every document into passages, in every stage alike (``data.chunking.mode=all``)."""
        for data in (self.mine.data, self.eval.data, *((self.synth.data,) if self.synth else ())):
            data.chunking.mode = "all"

    @property
    def stages(self) -> tuple[str, ...]:
        return (("synth",) if self.synth else ()) + ("mine", "train", "eval")

    def config(self, stage: str):
        return getattr(self, stage)


def _wire_synth(cfg: QuickstartConfig, data: Prepared, mine: MineConfig) -> Optional[SynthConfig]:
    """The synth stage (None for real labels), sharing mining's data, first stage and cache; mining then reads its
    queries and qrels instead of the train split's."""
    if data.labels == "real":
        return None
    synth, out = copy.deepcopy(cfg.synth), Path(cfg.output_dir) / "synth"
    synth.data = copy.deepcopy(mine.data)
    synth.output_dir, synth.cache_dir = str(out), mine.cache_dir
    # mine's encoder, index and BM25; the round trip keeps its own method (a named one: mining's may be auto)
    synth.first_stage = dataclasses.replace(copy.deepcopy(mine.first_stage), method=cfg.synth.first_stage.method,
                                            reason=None)
    if data.labels == "mixed" and not synth.mix_with:
        synth.mix_with = str(data.train)
    overrides = data_overrides(out)
    mine.data.queries, mine.data.qrels = overrides["queries"], overrides["qrels"]
    return synth


def _point_at(data_cfg, data: Prepared, qrels: Optional[Path]) -> None:
    """Set a stage's data keys (mine's or eval's ``data``) to the prepared files."""
    source = data.source
    data_cfg.path = str(source.folder) if source.folder else None
    # files set by hand (mine.data.queries=..., eval.data.qrels=...) win over the prepared ones
    data_cfg.corpus, data_cfg.queries = data_cfg.corpus or str(source.corpus), data_cfg.queries or str(source.queries)
    data_cfg.qrels = data_cfg.qrels or (str(qrels) if qrels else None)


def wire(cfg: QuickstartConfig, data: Prepared) -> Plan:
    """The stage configs with their inputs and outputs pointing at each other under ``cfg.output_dir``."""
    out = Path(cfg.output_dir)
    mine, train, ev = copy.deepcopy(cfg.mine), copy.deepcopy(cfg.train), copy.deepcopy(cfg.eval)
    if mines_behind_hybrid(cfg, data.labels):
        mine.first_stage.method, mine.first_stage.reason = "hybrid", SYNTHETIC_FIRST_STAGE
    # a bad value is reported as synthetic_max_steps|epochs (check_quickstart_config), not as a train key
    if data.labels == "synthetic" and cfg.synthetic_max_steps is not None and cfg.synthetic_max_steps >= 1:
        train.max_steps = cfg.synthetic_max_steps
    if data.labels == "synthetic" and cfg.synthetic_max_epochs is not None and cfg.synthetic_max_epochs > 0:
        train.max_epochs = cfg.synthetic_max_epochs
    _point_at(mine.data, data, data.train)
    mine.data.eval_qrels = str(data.test)
    if data.source.negatives and not mine.data.negatives:
        mine.data.negatives = str(data.source.negatives)
    mine.output_dir = str(out / "mine")
    auto_chunk = mine.data.chunking.mode == "auto"
    if auto_chunk:  # the length check decides (check_all); until then, chunking as the stages do by default
        mine.data.chunking.mode = "folders"
    train.data.train, train.output_dir = str(out / "mine"), str(out / "train")
    _point_at(ev.data, data, data.test)
    ev.output_dir, ev.cache_dir = str(out / "eval"), mine.cache_dir
    # the first stage the reranker was trained behind, and that its fusion weight was fitted on (for
    # first_stage.method=auto, the one mining picked: set when eval starts; eval's own auto needs a query log)
    ev.first_stage = dataclasses.replace(copy.deepcopy(mine.first_stage), reason=cfg.eval.first_stage.reason)
    if ev.first_stage.method == "auto":
        ev.first_stage.method = "hybrid"
    if cfg.query_log and mines_behind_hybrid(cfg, data.labels):
        ev.first_stage.method, ev.retrieve.pick.queries = "auto", cfg.query_log
    ev.data.chunking = copy.deepcopy(mine.data.chunking)  # long documents: scored the way they were trained
    spec = ev.rerankers.get("finetuned") or RerankerConfig(depth=ev.retrieve.top_k)
    spec.model = str(out / "train" / "final")
    spec.max_query_length = train.model.max_query_length  # queries are cut as in training
    # the fusion weight and calibration are fitted on dev passages read as eval reads them
    train.data.dev_max_passage_tokens = spec.max_passage_tokens
    ev.rerankers = {**{k: v for k, v in ev.rerankers.items() if k != "finetuned"}, "finetuned": spec}
    synth = _wire_synth(cfg, data, mine)
    return Plan(mine, train, ev, synth, auto_chunk)


def stage_keys(plan: Plan, files: list[Path]) -> dict[str, str]:
    """One key per stage: its resolved config plus the key of what it reads (``files``: the data), so a change
    reruns it and all after."""
    inputs = hash_strings([hash_path(p) for p in files])
    out = str(Path(plan.mine.output_dir).parent)
    keys: dict[str, str] = {}
    previous = inputs
    log = plan.eval.retrieve.pick.queries  # read by eval only: a new log reruns eval alone
    extra = {"eval": [hash_path(Path(log))]} if log else {}
    for name in plan.stages:
        # where the stages write is not what they compute: a quickstart folder moved elsewhere is still reused
        text = dump_yaml(plan.config(name)).replace(out, "<output_dir>")
        keys[name] = hash_strings([previous, inputs, text, *extra.get(name, [])])
        previous = keys[name]
    return keys


def _run_train(train: TrainConfig, folder: Path, stages: tuple[str, ...]) -> None:
    """Training runs as its own process (``python -m rerankforge train``): stages talk through files.

    Raises:
        StageError: the process exited with an error (its error line and the log with its traceback)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "quickstart-train.yaml"
    config.write_text(dump_yaml(train), encoding="utf-8")
    log = folder / "train-error.log"
    log.unlink(missing_ok=True)
    command = [sys.executable, "-m", "rerankforge", "train", "--config", str(config)]
    code = subprocess.run(command, env={**os.environ, ERROR_LOG_ENV: str(log)}).returncode
    if code == 0:
        return
    written = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    error = written[0].split(": error: ", 1)[-1] if written else (
        f"the process was killed by signal {-code}{' (out of memory?)' if code == -9 else ''}" if code < 0
        else f"the process exited with code {code}; its error is printed above")
    if not written:
        _write_log(log, f"{' '.join(command)}: {error}", "")
    raise StageError(_failure_message("train", train_input(train), error, log, stages), "train", log,
                     exit_code=2 if code == 2 else 1)


def run_stage(name: str, plan: Plan, out: Path) -> None:
    mine, train, ev = plan.mine, plan.train, plan.eval
    if name == "synth":
        synth_stage.synth(plan.synth)
    elif name == "mine":
        mine_stage.mine(mine)
    elif name == "train":
        _run_train(train, out, plan.stages)
    else:
        eval_stage.evaluate(ev, command="rerankforge quickstart")
        checkpoint = Path(ev.rerankers["finetuned"].model)
        if (checkpoint / "README.md").exists():  # the test split's figures join the card training wrote
            add_eval_results(checkpoint, Path(ev.output_dir) / "report.json", reranker="finetuned")


def _data_input(data) -> str:
    return f"the data folder {data.path}" if data.path else f"the corpus {data.corpus}"


def synth_input(synth: SynthConfig) -> str:
    return f"{_data_input(synth.data)} and the generator {synth.generator.model or synth.generator.base_url}"


def mine_input(mine: MineConfig) -> str:
    return _data_input(mine.data)


def train_input(train: TrainConfig) -> str:
    return f"the mined set {train.data.train} and the model {train.model.name_or_path}"


def eval_input(ev: EvalConfig) -> str:
    return f"{_data_input(ev.data)} and the checkpoint {ev.rerankers['finetuned'].model}"


def _write_log(log: Path, summary: str, details: str) -> Path:
    """``summary`` (the one-line error) first, then ``details`` (the traceback); falls back to the temp folder."""
    text = summary + "\n\n" + details
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text, encoding="utf-8")
    except OSError:
        log = Path(tempfile.gettempdir()) / log.name
        log.write_text(text, encoding="utf-8")
    return log


def _failure_message(stage: str, source: str, error: str, log: Path,
                     stages: tuple[str, ...] = ("mine", "train", "eval")) -> str:
    """One line. When a stage runs, every stage before it has finished (run or reused): a rerun reuses them."""
    finished = stages[:stages.index(stage)]
    kept = (f"the finished stage{'s' if len(finished) > 1 else ''} ({', '.join(finished)}) "
            f"{'are' if len(finished) > 1 else 'is'} kept and reused" if finished else "no stage had finished yet")
    return (f"the {stage} stage failed (input: {source}): {error.rstrip('.')}. Fix the cause and run the same "
            f"command again: {kept}. Full traceback: {log}")


def _run_guarded(name: str, plan: Plan, out: Path) -> None:
    """``run_stage``, with any failure turned into a ``StageError`` (traceback in ``<out>/<name>-error.log``)."""
    try:
        run_stage(name, plan, out)
        (out / f"{name}-error.log").unlink(missing_ok=True)  # an earlier failure's log: fixed now
    except StageError:
        raise
    except Exception as exc:
        error = one_line(exc)
        log = _write_log(out / f"{name}-error.log", error, traceback.format_exc())
        source = {"synth": lambda: synth_input(plan.synth), "mine": lambda: mine_input(plan.mine),
                  "train": lambda: train_input(plan.train), "eval": lambda: eval_input(plan.eval)}[name]()
        message = _failure_message(name, source, error, log, plan.stages)
        if isinstance(exc, (DataError, ConfigError)) and len(str(exc).splitlines()) > 1:
            message += "\n" + "\n".join(str(exc).splitlines()[1:])  # the problems themselves (short: DataError)
        raise StageError(message, name, log, exit_code=exit_code(exc)) from exc


def _prepare(cfg: QuickstartConfig, own: list[str]) -> Prepared:
    """``prepare_data``; when the data cannot be found, its problem is reported with the config's own problems."""
    try:
        return prepare_data(cfg)
    except (DatasetNotFoundError, DataError) as exc:
        nowhere = Path(cfg.data or cfg.corpus or cfg.dataset)
        stand_in = Prepared(Source("beir", "", nowhere, nowhere, {}), "real" if cfg.labels == "auto" else cfg.labels,
                            nowhere, nowhere)
        config = [p for ps in config_problems(wire(cfg, stand_in), own).values() for p in ps]
        if not config:
            raise
        found = exc.problems if isinstance(exc, DataError) else [Problem(str(exc))]
        found = [p for p in found if p.message not in config]  # e.g. test_fraction: said once
        raise DataError([Problem(p) for p in config] + found) from exc


def _manifest(cfg: QuickstartConfig, data: Prepared, checked, stages: dict) -> dict:
    return {"stage": "quickstart", "config": to_dict(cfg), "data": data.describe(), "lengths": checked.lengths,
            "chunking": "all" if checked.chunk else None, "notes": data.notes + checked.notes, "stages": stages,
            "versions": versions(), "git_commit": git_commit()}


def quickstart(cfg: QuickstartConfig) -> dict:
    """Run (or reuse) every stage; returns ``{"stages": {name: {"seconds", "reused"}}, "report": ..., ...}``.

    Raises:
        DataError, ConfigError: before any stage runs, every problem of every stage's config and data.
        StageError: a stage failed; the stages that finished are kept for the next run.
    """
    own = check_quickstart_config(cfg)
    data = _prepare(cfg, own)
    plan = wire(cfg, data)
    out, total = Path(cfg.output_dir), len(plan.stages)
    print(f"[0/{total}] checking the config and data of every stage ...", flush=True)
    checked = check_all(plan, own)
    if checked.chunk:
        plan.chunk_documents()
    for note in [*data.notes, *checked.notes, cold_start_note(cfg, data.labels)]:
        if note:
            print(note, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "manifest.json", _manifest(cfg, data, checked, {}))
    state_file = out / "stages.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    keys, stages = stage_keys(plan, data.files()), {}
    outputs = {"mine": Path(plan.mine.output_dir) / "manifest.json", "train": Path(plan.train.output_dir) / "final",
               "eval": Path(plan.eval.output_dir) / "report.json"}
    if plan.synth:
        outputs["synth"] = Path(plan.synth.output_dir) / "manifest.json"
    for number, name in enumerate(plan.stages, start=1):
        done = state.get(name, {})
        if done.get("key") == keys[name] and outputs[name].exists():
            print(f"[{number}/{total}] {name}: unchanged since its last run, reusing {outputs[name].parent}",
                  flush=True)
            stages[name] = {"seconds": done["seconds"], "reused": True}
            continue
        print(f"[{number}/{total}] {name} ...", flush=True)
        start = time.perf_counter()
        if name == "eval" and plan.eval.first_stage.method != "auto":  # eval reranks the first stage mining used
            mined = json.loads(outputs["mine"].read_text())
            plan.eval.first_stage.method = mined["first_stage"]["method"]
            plan.eval.first_stage.reason = first_stage_reason(mined)
        _run_guarded(name, plan, out)
        stages[name] = {"seconds": time.perf_counter() - start, "reused": False}
        state[name] = {"key": keys[name], "seconds": stages[name]["seconds"]}
        write_json(state_file, state)  # after each stage: an interruption keeps what finished
    write_json(out / "manifest.json", _manifest(cfg, data, checked, stages))
    report = json.loads(outputs["eval"].read_text())
    synth = json.loads(outputs["synth"].read_text()) if plan.synth else {}
    reason = report["first_stage"].get("why") or first_stage_reason(json.loads(outputs["mine"].read_text()))
    return {"stages": stages, "data": data.source.origin, "report": str(Path(plan.eval.output_dir) / "report.md"),
            "labels": data.labels, "synth": synth.get("counts"), "held_out": data.held_out,
            "synth_speed": (synth.get("speed") or {}).get("queries_per_s"),
            "checkpoint": str(outputs["train"]), "first_stage": report["first_stage"]["method"],
            "first_stage_reason": reason,
            "first_stages": report["first_stages"], "best_first_stage": report["best_first_stage"],
            "finetuned": report["rerankers"]["finetuned"]}


callable_module(__name__, "rerankforge.api:quickstart")  # ``from rerankforge import quickstart`` may give this module
