"""``rerankforge quickstart [--data PATH] [key=value ...]``: the whole main job on SciFact, sized for a CPU.

(with ``labels=synthetic``: generate training queries for the corpus first, ``rerankforge synth``, and ignore the
train split's labels; ``labels=mixed`` adds the synthetic queries to them) mine the train split → train a reranker
(``configs/quickstart.yaml``) → evaluate the first stage against the fine-tuned reranker on the test split → print a
table (``quickstart_summary.py``) and the report's path. Each stage writes its usual folder
under ``output_dir``; a stage whose inputs and config are unchanged since it last finished is reused, so an
interrupted quickstart picks up where it stopped.

Before any stage runs, ``check_all`` checks every stage's config and data (cheap: no model is loaded) and reports
every problem at once. A stage that fails raises ``StageError``: one message naming the stage, what it read, the
error, and the finished stages a rerun reuses; the traceback goes to ``<output_dir>/<stage>-error.log``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from rerankforge.data_prep.config import MineConfig, SynthConfig
from rerankforge.eval.config import EvalConfig, RerankerConfig
from rerankforge.train.config import TrainConfig
from rerankforge.utils.config import ConfigError, dump_yaml
from rerankforge.utils.io import hash_path, hash_strings, write_json

ERROR_LOG_ENV = "RERANKFORGE_ERROR_LOG"  # `rerankforge <command>` writes its error (and traceback) there when set


class StageError(RuntimeError):
    """A quickstart stage failed. The message is one line: the stage, its input, the error, what to do, the stages
    a rerun reuses and where the traceback is (``log``). ``exit_code``: 2 for bad input, else 1."""

    def __init__(self, message: str, stage: str, log: Optional[Path] = None, exit_code: int = 1):
        super().__init__(message)
        self.stage, self.log, self.exit_code = stage, log, exit_code


@dataclass
class QuickstartConfig:
    """The stage configs; data paths and output folders are wired by the quickstart itself.

    ``labels``: ``real`` trains on the data set's train split; ``synthetic`` (cold start) trains on queries ``synth``
    generates for the corpus, ignoring the train labels; ``mixed`` adds those queries to the train labels. All three
    evaluate on the real test split."""

    dataset: str = "scifact"  # BEIR name: --data → $RERANKFORGE_DATA_DIR/<name> → download cache → download
    data: Optional[str] = None
    output_dir: str = "runs/quickstart"
    labels: Literal["real", "synthetic", "mixed"] = "real"
    # labels=synthetic: train.max_steps for the synthetic set, which is smaller than a real train split
    # (None: train.max_steps)
    synthetic_max_steps: Optional[int] = None
    synth: SynthConfig = field(default_factory=SynthConfig)
    mine: MineConfig = field(default_factory=MineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass
class Plan:
    """The wired stage configs, in the order they run; ``synth`` is None with real labels."""

    mine: MineConfig
    train: TrainConfig
    eval: EvalConfig
    synth: Optional[SynthConfig] = None

    @property
    def stages(self) -> tuple[str, ...]:
        return (("synth",) if self.synth else ()) + ("mine", "train", "eval")

    def config(self, stage: str):
        return getattr(self, stage)


def _wire_synth(cfg: QuickstartConfig, data: Path, mine: MineConfig) -> Optional[SynthConfig]:
    """The synth stage (None for real labels), sharing mining's first stage and cache; mining then reads its
    queries and qrels instead of the train split's."""
    if cfg.labels == "real":
        return None
    from rerankforge.data_prep.synth import data_overrides

    synth, out = copy.deepcopy(cfg.synth), Path(cfg.output_dir) / "synth"
    synth.data.path, synth.output_dir, synth.cache_dir = str(data), str(out), mine.cache_dir
    synth.encoder, synth.index = copy.deepcopy(mine.encoder), copy.deepcopy(mine.index)
    synth.bm25, synth.rrf_k = copy.deepcopy(mine.mining.bm25), mine.mining.rrf_k
    if cfg.labels == "mixed" and not synth.mix_with:
        synth.mix_with = str(data / "qrels" / f"{mine.data.split}.tsv")
    overrides = data_overrides(out)
    mine.data.queries, mine.data.qrels = overrides["queries"], overrides["qrels"]
    return synth


def cold_start_note(cfg: QuickstartConfig) -> Optional[str]:
    """A warning for ``labels=synthetic`` with ``mine.mining.candidates=auto`` (else None): the pick would be made
    on synthetic dev queries, which share their passage's words and so cannot rank first stages reliably."""
    if cfg.labels != "synthetic" or cfg.mine.mining.candidates != "auto":
        return None
    return ("note: labels=synthetic with mine.mining.candidates=auto picks the first stage on synthetic queries, "
            "which reuse their passage's words: on SciFact and COVID-QA it picked the wrong one (by 0.01 nDCG@10). "
            "Set mine.mining.candidates=bm25|dense|hybrid to the first stage you will serve (README: Cold start).")


def wire(cfg: QuickstartConfig, data: Path) -> Plan:
    """The stage configs with their inputs and outputs pointing at each other under ``cfg.output_dir``."""
    out = Path(cfg.output_dir)
    mine, train, ev = copy.deepcopy(cfg.mine), copy.deepcopy(cfg.train), copy.deepcopy(cfg.eval)
    # a value below 1 is reported as synthetic_max_steps (check_quickstart_config), not as train.max_steps
    if cfg.labels == "synthetic" and cfg.synthetic_max_steps is not None and cfg.synthetic_max_steps >= 1:
        train.max_steps = cfg.synthetic_max_steps
    mine.data.path, mine.output_dir = str(data), str(out / "mine")
    train.data.train, train.output_dir = str(out / "mine"), str(out / "train")
    ev.data.path, ev.output_dir = str(data), str(out / "eval")
    ev.cache_dir = mine.cache_dir
    # the first stage the reranker was trained behind, and that its fusion weight was fitted on (for
    # mining.candidates=auto, the one mining picked: set when eval starts)
    ev.retrieve.method, ev.retrieve.rrf_k = mine.mining.candidates, mine.mining.rrf_k
    ev.retrieve.encoder, ev.retrieve.bm25 = copy.deepcopy(mine.encoder), copy.deepcopy(mine.mining.bm25)
    ev.retrieve.index = copy.deepcopy(mine.index)
    ev.data.chunking = copy.deepcopy(mine.data.chunking)  # long documents: scored the way they were trained
    spec = ev.rerankers.get("finetuned") or RerankerConfig(depth=ev.retrieve.top_k)
    spec.model = str(out / "train" / "final")
    ev.rerankers = {**{k: v for k, v in ev.rerankers.items() if k != "finetuned"}, "finetuned": spec}
    return Plan(mine, train, ev, _wire_synth(cfg, data, mine))


def stage_keys(plan: Plan, data: Path) -> dict[str, str]:
    """One key per stage: its resolved config plus the key of what it reads, so a change reruns it and all after."""
    inputs = hash_strings([hash_path(p) for p in sorted(data.rglob("*")) if p.is_file()])
    out = str(Path(plan.mine.output_dir).parent)
    keys: dict[str, str] = {}
    previous = inputs
    for name in plan.stages:
        # where the stages write is not what they compute: a quickstart folder moved elsewhere is still reused
        text = dump_yaml(plan.config(name)).replace(out, "<output_dir>")
        keys[name] = hash_strings([previous, inputs, text])
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
        from rerankforge.data_prep.synth import synth

        synth(plan.synth)
    elif name == "mine":
        from rerankforge.data_prep.mine import mine as run_mine

        run_mine(mine)
    elif name == "train":
        _run_train(train, out, plan.stages)
    else:
        from rerankforge.eval.run import evaluate
        from rerankforge.models.card import add_eval_results

        evaluate(ev, command="rerankforge quickstart")
        checkpoint = Path(ev.rerankers["finetuned"].model)
        if (checkpoint / "README.md").exists():  # the test split's figures join the card training wrote
            add_eval_results(checkpoint, Path(ev.output_dir) / "report.json", reranker="finetuned")


def _qualify(text: str, stage: str, schema: type, leading_key: bool = False) -> str:
    """Config keys in a stage's message as the quickstart spells them: ``data.answers`` → ``eval.data.answers``
    (and, with ``leading_key``, a config problem's first word: ``batch_size must be ...``)."""
    names = "|".join(f.name for f in dataclasses.fields(schema))
    text = re.sub(rf"(?<![\w./<-])((?:{names})\.[A-Za-z_])", rf"{stage}.\1", text)
    return re.sub(rf"^((?:{names})(?=[ =]))", rf"{stage}.\1", text) if leading_key else text


def check_quickstart_config(cfg: QuickstartConfig) -> list[str]:
    """Problems with the quickstart's own keys (the stages' keys are checked by ``check_all``)."""
    if cfg.synthetic_max_steps is not None and cfg.synthetic_max_steps < 1:
        return [f"synthetic_max_steps must be >= 1 (or null: train.max_steps), got {cfg.synthetic_max_steps}."]
    return []


def config_problems(plan: Plan, own: Sequence[str] = ()) -> dict[str, list[str]]:
    """Config problems by stage (``quickstart``: ``own``), worded with the quickstart's key names; reads no file."""
    from rerankforge.data_prep.config import check_mine_config, check_synth_config
    from rerankforge.eval.config import check_eval_config
    from rerankforge.train.config import check_train_config

    checks = {"synth": (check_synth_config, SynthConfig), "mine": (check_mine_config, MineConfig),
              "train": (check_train_config, TrainConfig), "eval": (check_eval_config, EvalConfig)}
    problems = {"quickstart": list(own)}
    for stage in plan.stages:
        check, schema = checks[stage]
        problems[stage] = [_qualify(p, stage, schema, leading_key=True) for p in check(plan.config(stage))]
    return problems


def check_all(plan: Plan, own: Sequence[str] = ()) -> None:
    """Every stage's config and data checks, before any compute (no model is loaded, nothing is encoded).

    Runs the checks each stage starts with: synth's config and corpus checks (with synthetic labels), mining's
    config checks, then its loaders + validation (``load_labelled_data``; with synthetic labels its queries do not
    exist yet), the train config checks, the eval config checks and ``load_eval_data``.

    ``own``: the quickstart's own config problems (``check_quickstart_config``), reported with the rest.

    Raises:
        DataError: every problem found (config problems included). ConfigError: config problems only.
    """
    from rerankforge.data_prep.mine import load_labelled_data
    from rerankforge.data_prep.problems import DataError, Problem
    from rerankforge.eval.data import eval_cache_dir, load_eval_data

    def qualified(problems, stage: str, schema: type) -> list[Problem]:
        return [dataclasses.replace(p, message=_qualify(p.message, stage, schema)) for p in problems]

    by_stage = config_problems(plan, own)
    config = [p for problems in by_stage.values() for p in problems]
    data: list[Problem] = []
    try:
        if plan.synth and not by_stage["synth"]:
            from rerankforge.data_prep.synth import load_corpus_for_synth

            load_corpus_for_synth(plan.synth)
        elif not plan.synth and not by_stage["mine"]:  # what `rerankforge mine` checks first: files, loaders, validate
            load_labelled_data(plan.mine)
    except DataError as exc:
        data += qualified(exc.problems, plan.stages[0], SynthConfig if plan.synth else MineConfig)
    try:
        labelled = load_eval_data(plan.eval.data, cache_dir=eval_cache_dir(plan.eval))
        if not labelled.qrels:
            data.append(Problem(f"no query with a positive label in the eval split (eval.data.split="
                                f"{plan.eval.data.split}); nothing to evaluate.", labelled.sources.get("qrels")))
    except DataError as exc:
        data += qualified(exc.problems, "eval", EvalConfig)
    if data:
        raise DataError([Problem(p) for p in config] + data)
    if config:
        raise ConfigError("Config problems:\n" + "\n".join(f"  - {p}" for p in config))


def synth_input(synth: SynthConfig) -> str:
    return f"the corpus in {synth.data.path} and the generator {synth.generator.model or synth.generator.base_url}"


def mine_input(mine: MineConfig) -> str:
    return f"the data folder {mine.data.path}"


def train_input(train: TrainConfig) -> str:
    return f"the mined set {train.data.train} and the model {train.model.name_or_path}"


def eval_input(ev: EvalConfig) -> str:
    return f"the data folder {ev.data.path} and the checkpoint {ev.rerankers['finetuned'].model}"


def _write_log(log: Path, summary: str, details: str) -> Path:
    """``summary`` (the one-line error) first, then ``details`` (the traceback); falls back to the temp folder."""
    import tempfile

    text = summary + "\n\n" + details
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text, encoding="utf-8")
    except OSError:
        log = Path(tempfile.gettempdir()) / log.name
        log.write_text(text, encoding="utf-8")
    return log


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (+ how many lines more)."""
    lines = str(exc).strip().splitlines() or [""]
    more = f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
    return f"{type(exc).__name__}: {lines[0]}{more}".rstrip(": ")


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
    from rerankforge.data_prep.problems import DataError

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
        raise StageError(message, name, log,
                         exit_code=2 if isinstance(exc, (DataError, ConfigError, FileNotFoundError)) else 1) from exc


def quickstart(cfg: QuickstartConfig) -> dict:
    """Run (or reuse) every stage; returns ``{"stages": {name: {"seconds", "reused"}}, "report": ..., ...}``.

    Raises:
        DataError, ConfigError: before any stage runs, every problem of every stage's config and data.
        StageError: a stage failed; the stages that finished are kept for the next run.
    """
    from rerankforge.data_prep.download import DatasetNotFoundError, resolve_dataset
    from rerankforge.data_prep.problems import DataError, Problem

    own = check_quickstart_config(cfg)
    try:
        data = resolve_dataset(cfg.dataset, cfg.data,
                               Path(cfg.mine.cache_dir).expanduser() if cfg.mine.cache_dir else None)
    except DatasetNotFoundError as exc:  # reported with the config's problems, which need no data to find
        config = [p for ps in config_problems(wire(cfg, Path(cfg.data or cfg.dataset)), own).values() for p in ps]
        if config:
            raise DataError([Problem(p) for p in config] + [Problem(str(exc))]) from exc
        raise
    plan = wire(cfg, data)
    out, total = Path(cfg.output_dir), len(plan.stages)
    print(f"[0/{total}] checking the config and data of every stage ...", flush=True)
    check_all(plan, own)
    note = cold_start_note(cfg)
    if note:
        print(note, flush=True)
    state_file = out / "stages.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    keys, stages = stage_keys(plan, data), {}
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
        if name == "eval":  # mining.candidates=auto: eval reranks the first stage mining picked
            picked = json.loads(outputs["mine"].read_text())["config"]["mining"]["candidates"]
            plan.eval.retrieve.method = picked
        _run_guarded(name, plan, out)
        stages[name] = {"seconds": time.perf_counter() - start, "reused": False}
        state[name] = {"key": keys[name], "seconds": stages[name]["seconds"]}
        out.mkdir(parents=True, exist_ok=True)
        write_json(state_file, state)  # after each stage: an interruption keeps what finished
    report = json.loads(outputs["eval"].read_text())
    synth = json.loads(outputs["synth"].read_text()) if plan.synth else {}
    return {"stages": stages, "data": str(data), "report": str(Path(plan.eval.output_dir) / "report.md"),
            "labels": cfg.labels, "synth": synth.get("counts"),
            "synth_speed": (synth.get("speed") or {}).get("queries_per_s"),
            "checkpoint": str(outputs["train"]), "first_stage": report["first_stage"]["method"],
            "first_stages": report["first_stages"], "best_first_stage": report["best_first_stage"],
            "finetuned": report["rerankers"]["finetuned"]}
