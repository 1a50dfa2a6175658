"""The ``rerankforge`` command: ``rerankforge mine --config configs/data_prep/scifact.yaml [key=value ...]``.

Each subcommand takes ``--config FILE`` plus dotted ``key=value`` overrides, and ``--print-config`` to show
the resolved config without running anything.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shlex
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from rerankforge import __version__
from rerankforge.core.config import dump_yaml, load_config
from rerankforge.core.errors import ERROR_LOG_ENV, RerankforgeError, exit_code, one_line
from rerankforge.core.progress import quiet_progress_when_not_a_tty


def _mined(cfg, out: Path) -> str:
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    given = f"{counts['given_negatives']} given + " if counts.get("given_negatives") else ""
    return (f"Mined {counts['queries_mined']} queries ({counts['rows']} query-positive rows): "
            f"{given}{counts['hard_negatives']} hard + {counts['easy_negatives']} easy negatives; "
            f"{counts['queries_short']} queries short of mining.num_negatives={cfg.mining.num_negatives} hard ones "
            f"got random ones instead.\nWrote {out}/dataset, {out}/manifest.json and {out}/config.yaml")


def _synthesized(cfg, out: Path) -> str:
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    dropped = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items() if n) or "none"
    return (f"Kept {counts['queries_kept']} of {counts['queries_generated']} generated queries from "
            f"{counts['passages_sampled']} passages (dropped: {dropped}).\n"
            f"Wrote {out}/queries.jsonl, {out}/qrels/train.tsv and {out}/manifest.json. Mine with: rerankforge mine "
            f"data.queries={out}/queries.jsonl data.qrels={out}/qrels/train.tsv ...")


def _exported(cfg, out: Path) -> str:
    verdict = json.loads((out / "openvino" / "manifest.json").read_text())["quality_gate"]
    return (f"Exported to {out} (dev nDCG@10: torch {verdict['torch_ndcg@10']:.4f}, exported "
            f"{verdict['export_ndcg@10']:.4f}). Load it with backend=openvino"
            f"{' quantize=int8' if cfg.quantize else ''}; no calibration is needed at load.")


def _evaluated(cfg, report: Path) -> str:
    summary = report.read_text(encoding="utf-8").split("## Plots")[0]
    return f"{summary}\nWrote {report} (+ report.json, per_query.jsonl, runs/, plots/)"


def _quickstarted(cfg, result: dict) -> str:
    return _attr("rerankforge.quickstart_summary:summary_table")(result)


def _evaluate(cfg, args: argparse.Namespace) -> Path:
    """``evaluate``, told the command line that asked for it (the report quotes it)."""
    words = (["--config", args.config] if args.config else []) + list(args.overrides)
    return _attr("rerankforge.eval.run:evaluate")(cfg, "rerankforge eval " + " ".join(shlex.quote(w) for w in words))


@dataclass(frozen=True)
class Command:
    """One ``rerankforge`` command: the config schema it loads, the stage function it runs on that config, and
    what it prints of the result. ``schema`` and ``run`` are ``module:attribute`` names, imported when the command
    runs (the stages import torch; ``--help`` does not need it)."""

    help: str
    schema: str
    run: str | Callable[[Any, argparse.Namespace], Any]
    report: Optional[Callable[[Any, Any], str]] = None  # (cfg, result) -> text; None prints the result as is
    flags: tuple[tuple[str, str], ...] = ()  # shortcuts for config keys: --repo-id sets repo_id
    default_config: Optional[str] = None  # a packaged configs/ file used without --config


COMMANDS: dict[str, Command] = {
    "quickstart": Command("The whole main job on your data (default SciFact), sized for a CPU: mine -> train -> eval "
                          "-> report.", "rerankforge.quickstart:QuickstartConfig",
                          "rerankforge.quickstart:quickstart", _quickstarted, default_config="quickstart.yaml",
                          flags=(("--data", "Your data: a BEIR folder, a .jsonl/.parquet/.csv file or saved dataset of "
                                            "(query, positive[, negative ...]) rows, or a Hugging Face dataset id "
                                            "(default: $RERANKFORGE_DATA_DIR/scifact, else download)."),
                                 ("--corpus", "Corpus file (with --queries and --qrels; a test split is held out of "
                                              "the qrels)."),
                                 ("--queries", "Queries file."),
                                 ("--qrels", "Qrels file (query-id, corpus-id, score)."))),
    "synth": Command("Generate training queries for a corpus with no labels (cold start) with a local LLM or an "
                     "endpoint.", "rerankforge.data_prep.config:SynthConfig", "rerankforge.data_prep.synth:synth",
                     _synthesized),
    "mine": Command("Mine hard negatives from a corpus and labelled queries into a training set.",
                    "rerankforge.data_prep.config:MineConfig", "rerankforge.data_prep.mine:mine", _mined),
    "train": Command("Fine-tune a cross-encoder reranker on a mined training set (single process; use "
                     "`accelerate launch train/run.py` for several).", "rerankforge.train.config:TrainConfig",
                     "rerankforge.train.run:main", lambda cfg, final: f"Final model: {final}"),
    "serve": Command("Serve a reranker (Cohere /v1|v2/rerank, TEI /rerank) and optionally the pipeline (/v1/query).",
                     "rerankforge.serve.config:ServeConfig", "rerankforge.serve.app:serve", lambda cfg, _: "",
                     flags=(("--model", "Checkpoint to serve (model=...)."),
                            ("--pipeline", "Eval config enabling /v1/query."),
                            ("--host", "Bind address (default 127.0.0.1)."), ("--port", "Port (default 8000)."))),
    "export": Command("Write an OpenVINO (float32 or int8) copy of a checkpoint that loads without recalibrating; "
                      "refuses one that loses dev nDCG@10.", "rerankforge.models.export:ExportConfig",
                      "rerankforge.models.export:export", _exported,
                      flags=(("--model", "Checkpoint folder, e.g. runs/x/final."),
                             ("--out", "Output folder (default <model>-openvino)."),
                             ("--backend", "openvino (default)."),
                             ("--quantize", "int8: static int8, calibrated on --calibration."),
                             ("--calibration", "Pairs for int8 (a mined set; default: the model's training set)."),
                             ("--dev", "Dev split for the quality gate (a mined folder; default: the training "
                                       "set's)."))),
    "push": Command("Publish a checkpoint to the Hugging Face Hub (--dry-run: write and validate the folder only).",
                    "rerankforge.models.publish:PushConfig", "rerankforge.models.publish:push",
                    flags=(("--model", "Checkpoint folder, e.g. runs/x/final."), ("--repo-id", "Hub repo, user/name."),
                           ("--out", "Where --dry-run writes the folder."), ("--private", "Create a private repo."),
                           ("--dry-run", "Write and validate the upload folder; upload nothing."),
                           ("--eval-report", "A `rerankforge eval` report.json of this model; its figures join the "
                                             "card."))),
    "eval": Command("Evaluate retrieve → rerank → generate with several rerankers side by side; write a report.",
                    "rerankforge.eval.config:EvalConfig", _evaluate, _evaluated),
}
SWITCHES = ("--private", "--dry-run")  # flags that take no value: present means true


def _attr(name: str) -> Any:
    """``module:attribute`` -> the attribute, importing the module now."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _overrides(command: Command, args: argparse.Namespace) -> list[str]:
    """The dotted overrides, then the flags' keys (``--repo-id x`` -> ``repo_id=x``)."""
    overrides = list(args.overrides)
    for flag, _ in command.flags:
        key = flag[2:].replace("-", "_")
        value = getattr(args, key, None)
        if flag in SWITCHES:
            overrides += [f"{key}=true"] if value else []
        elif value:
            overrides.append(f"{key}={value}")
    return overrides


def run_command(name: str, args: argparse.Namespace) -> int:
    """Load the command's config (``--config`` or its packaged default, then the overrides), print it with
    ``--print-config``, else run its stage and print the result."""
    command = COMMANDS[name]
    default = Path(__file__).resolve().parent / "configs" / command.default_config if command.default_config else None
    config_file = args.config or (default if default is not None and default.exists() else None)
    cfg = load_config(_attr(command.schema), config_file, _overrides(command, args))
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    result = command.run(cfg, args) if callable(command.run) else _attr(command.run)(cfg)
    text = command.report(cfg, result) if command.report else str(result)
    if text:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rerankforge", description="Turn a general reranker into a domain reranker.")
    parser.add_argument("--version", action="version", version=f"rerankforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        cmd = sub.add_parser(name, help=command.help, description=command.help)
        cmd.add_argument("--config", help="YAML config file (see configs/).")
        cmd.add_argument("--print-config", action="store_true", help="Print the resolved config and exit.")
        cmd.add_argument("overrides", nargs="*", metavar="key=value", help="Dotted overrides, e.g. seed=1.")
        for flag, help_text in command.flags:
            kind = {"action": "store_true"} if flag in SWITCHES else {}
            cmd.add_argument(flag, help=help_text, **kind)
    return parser


def _error_log(command: str) -> Path:
    """Where an error's traceback goes: ``$RERANKFORGE_ERROR_LOG`` (set by the quickstart for its train stage),
    else a file in the temp folder."""
    default = Path(tempfile.gettempdir()) / f"rerankforge-{command}-{os.getpid()}.log"
    return Path(os.environ.get(ERROR_LOG_ENV) or default)


def _report(command: str, message: str, details: str = "") -> Optional[Path]:
    """Print ``rerankforge <command>: error: <message>``; keep it (and ``details``) in the error log when the
    caller asked for one (or there are details to keep). Returns the log's path when written."""
    line = f"rerankforge {command}: error: {message}"
    log = None
    if details or os.environ.get(ERROR_LOG_ENV):
        log = _error_log(command)
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(line.splitlines()[0] + "\n\n" + (details or message) + "\n", encoding="utf-8")
        except OSError:
            log = None
    if details and log:
        line += f" (full traceback: {log}; set RERANKFORGE_DEBUG=1 to raise it here)"
    print(line, file=sys.stderr)
    return log


def main(argv: Optional[Sequence[str]] = None) -> int:
    quiet_progress_when_not_a_tty()  # before tqdm is imported: a log gets one progress line per ~10 s, not per step
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run_command(args.command, args)
    except KeyboardInterrupt:
        kept = "; finished stages are kept and reused by the next run" if args.command == "quickstart" else ""
        print(f"rerankforge {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    except (RerankforgeError, FileNotFoundError) as exc:
        _report(args.command, str(exc))
        return exit_code(exc)
    except Exception as exc:  # a bug or an environment problem: one line, the traceback in a file
        if os.environ.get("RERANKFORGE_DEBUG") == "1":
            raise
        _report(args.command, one_line(exc), traceback.format_exc())
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
