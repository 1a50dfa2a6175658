"""The ``rerankforge`` command: ``rerankforge mine --config configs/data_prep/scifact.yaml [key=value ...]``.

A layer over the Python API (``api.py``): each subcommand takes ``--config FILE`` (or an example config's name)
plus dotted ``key=value`` overrides, runs the API function and prints what it wrote; ``--print-config [--explain]``
shows the resolved config (with each key's meaning) without running anything. ``rerankforge configs`` lists the
example configs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from rerankforge import __version__, api
from rerankforge.core.config import PACKAGED_CONFIGS, ConfigError, dump_yaml, packaged_config
from rerankforge.core.describe import explained_yaml
from rerankforge.core.errors import ERROR_LOG_ENV, RerankforgeError, exit_code, one_line
from rerankforge.core.modules import attribute
from rerankforge.core.progress import quiet_progress_when_not_a_tty


def _mined(cfg, result) -> str:
    out, counts = result.output_dir, result.counts
    given = f"{counts['given_negatives']} given + " if counts.get("given_negatives") else ""
    return (f"Mined {counts['queries_mined']} queries ({counts['rows']} query-positive rows): "
            f"{given}{counts['hard_negatives']} hard + {counts['easy_negatives']} easy negatives; "
            f"{counts['queries_short']} queries short of mining.num_negatives={cfg.mining.num_negatives} hard ones "
            f"got random ones instead.\nWrote {out}/dataset, {out}/manifest.json and {out}/config.yaml")


def _synthesized(cfg, result) -> str:
    out, counts = result.output_dir, result.manifest["counts"]
    dropped = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items() if n) or "none"
    return (f"Kept {counts['queries_kept']} of {counts['queries_generated']} generated queries from "
            f"{counts['passages_sampled']} passages (dropped: {dropped}).\n"
            f"Wrote {result.queries}, {result.qrels} and {out}/manifest.json. Mine with: rerankforge mine "
            f"data.queries={result.queries} data.qrels={result.qrels} ...")


def _exported(cfg, result) -> str:
    out = result.output_dir
    verdict = json.loads((out / "openvino" / "manifest.json").read_text())["quality_gate"]
    return (f"Exported to {out} (dev nDCG@10: torch {verdict['torch_ndcg@10']:.4f}, exported "
            f"{verdict['export_ndcg@10']:.4f}). Load it with backend=openvino"
            f"{' quantize=int8' if cfg.quantize else ''}; no calibration is needed at load.")


def _evaluated(cfg, result) -> str:
    summary = result.report.read_text(encoding="utf-8").split("## Plots")[0]
    return f"{summary}\nWrote {result.report} (+ report.json, per_query.jsonl, runs/, plots/)"


def _quickstarted(cfg, result) -> str:
    return attribute("rerankforge.quickstart_summary:summary_table")(result.stages)


def _evaluate(cfg, args: argparse.Namespace):
    """``evaluate``, told the command line that asked for it (the report quotes it)."""
    words = (["--config", args.config] if args.config else []) + list(args.overrides)
    return api.evaluate(cfg, command="rerankforge eval " + " ".join(shlex.quote(w) for w in words))


def _list_configs(args: argparse.Namespace) -> int:
    """``rerankforge configs``: the example configs that ship with the package; ``--copy NAME`` copies one here."""
    shipped = sorted(p.relative_to(PACKAGED_CONFIGS).as_posix() for p in PACKAGED_CONFIGS.rglob("*.yaml"))
    if not args.copy:
        for name in shipped:
            first = (PACKAGED_CONFIGS / name).read_text(encoding="utf-8").splitlines()[:1]
            print(f"configs/{name:<34} {first[0].lstrip('# ') if first else ''}")
        print("\nCopy one here with `rerankforge configs --copy NAME`; --config also takes these names as they are.")
        return 0
    source = packaged_config(args.copy)
    if not source.is_file():
        raise ConfigError(f"No example config {args.copy!r}; `rerankforge configs` lists them.")
    target = Path(args.to or source.name)
    if target.exists():
        raise ConfigError(f"{target} exists; pass --to another path, or remove it first.")
    shutil.copyfile(source, target)
    print(f"Wrote {target}. Run it with: rerankforge <command> --config {target}")
    return 0


@dataclass(frozen=True)
class Command:
    """One ``rerankforge`` command: the API function it runs (``api.py``; its schema: ``COMMAND_SCHEMAS``), or
    a function of ``(cfg, args)``; what it prints of the result; shortcuts for config keys (``--repo-id`` sets
    ``repo_id``); and two examples for ``--help``."""

    help: str
    stage: str
    run: Optional[Callable[[Any, argparse.Namespace], Any]] = None
    report: Optional[Callable[[Any, Any], str]] = None  # (cfg, result) -> text; None prints the result as is
    flags: tuple[tuple[str, str], ...] = ()
    examples: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {
    "quickstart": Command("The whole main job on your data (default SciFact), sized for a CPU: mine -> train -> eval "
                          "-> report.", "quickstart", report=_quickstarted,
                          flags=(("--data", "Your data: a BEIR folder, a .jsonl/.parquet/.csv file or saved dataset of "
                                            "(query, positive[, negative ...]) rows, or a Hugging Face dataset id "
                                            "(default: $RERANKFORGE_DATA_DIR/scifact, else download)."),
                                 ("--corpus", "Corpus file (with --queries and --qrels; a test split is held out of "
                                              "the qrels)."),
                                 ("--queries", "Queries file."),
                                 ("--qrels", "Qrels file (query-id, corpus-id, score).")),
                          examples=("rerankforge quickstart --data my-beir-folder",
                                    "rerankforge quickstart --corpus docs/ labels=synthetic output_dir=runs/mine")),
    "synth": Command("Generate training queries for a corpus with no labels (cold start) with a local LLM or an "
                     "endpoint.", "synth", report=_synthesized,
                     examples=("rerankforge synth --config configs/data_prep/scifact-synth.yaml",
                               "rerankforge synth data.corpus=docs/ passages=500 output_dir=runs/synth/docs")),
    "mine": Command("Mine hard negatives from a corpus and labelled queries into a training set.", "mine",
                    report=_mined,
                    examples=("rerankforge mine --config configs/data_prep/scifact.yaml",
                              "rerankforge mine data.path=my-beir-folder first_stage.method=auto "
                              "output_dir=runs/mine")),
    "train": Command("Fine-tune a cross-encoder reranker on a mined training set, in this process; on several "
                     "devices: `accelerate launch -m rerankforge train ...` (in a checkout also `accelerate launch "
                     "train/run.py ...`).", "train",
                     report=lambda cfg, result: f"Final model: {result.final}",
                     examples=("rerankforge train --config configs/train/scifact-minilm.yaml",
                               "rerankforge train data.train=runs/mine lora.enabled=true optim.lr=1e-4")),
    "serve": Command("Serve a reranker (Cohere /v1|v2/rerank, TEI /rerank) and optionally the pipeline (/v1/query).",
                     "serve", report=lambda cfg, _: "",
                     flags=(("--model", "Checkpoint to serve (model=...)."),
                            ("--pipeline", "Eval config enabling /v1/query."),
                            ("--host", "Bind address (default 127.0.0.1)."), ("--port", "Port (default 8000).")),
                     examples=("rerankforge serve --model runs/train/scifact-minilm/final",
                               "rerankforge serve --model runs/x/final --pipeline runs/eval/config.yaml --port 9000")),
    "export": Command("Write an OpenVINO (float32 or int8) copy of a checkpoint that loads without recalibrating; "
                      "refuses one that loses dev nDCG@10.", "export", report=_exported,
                      flags=(("--model", "Checkpoint folder, e.g. runs/x/final."),
                             ("--out", "Output folder (default <model>-openvino)."),
                             ("--backend", "openvino (default)."),
                             ("--quantize", "int8: static int8, calibrated on --calibration."),
                             ("--calibration", "Pairs for int8 (a mined set; default: the model's training set)."),
                             ("--dev", "Dev split for the quality gate (a mined folder; default: the training "
                                       "set's).")),
                      examples=("rerankforge export --model runs/x/final",
                                "rerankforge export --model runs/x/final --quantize int8")),
    "push": Command("Publish a checkpoint to the Hugging Face Hub (--dry-run: write and validate the folder only).",
                    "push",
                    flags=(("--model", "Checkpoint folder, e.g. runs/x/final."), ("--repo-id", "Hub repo, user/name."),
                           ("--out", "Where --dry-run writes the folder."), ("--private", "Create a private repo."),
                           ("--dry-run", "Write and validate the upload folder; upload nothing."),
                           ("--eval-report", "A `rerankforge eval` report.json of this model; its figures join the "
                                             "card.")),
                    examples=("rerankforge push --model runs/x/final --repo-id me/scifact-reranker",
                              "rerankforge push --model runs/x/final --dry-run --out runs/x/hub")),
    "eval": Command("Evaluate retrieve → rerank → generate with several rerankers side by side; write a report.",
                    "evaluate", run=_evaluate, report=_evaluated,
                    examples=("rerankforge eval --config configs/eval/scifact.yaml",
                              "rerankforge eval --config configs/eval/scifact.yaml "
                              "rerankers.finetuned.model=runs/x/final output_dir=runs/eval/x")),
}
SWITCHES = ("--private", "--dry-run")  # flags that take no value: present means true


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
    """Load the command's config (``--config``, a packaged example's name or the packaged default, then the
    overrides), print it with ``--print-config``, else run its stage and print the result."""
    if name == "configs":
        return _list_configs(args)
    command = COMMANDS[name]
    cfg = api.resolve_config(name, args.config, _overrides(command, args))
    if args.print_config:
        print(explained_yaml(cfg) if args.explain else dump_yaml(cfg), end="")
        return 0
    result = command.run(cfg, args) if command.run else getattr(api, command.stage)(cfg)
    text = command.report(cfg, result) if command.report else str(result)
    if text:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rerankforge", description="Turn a general reranker into a domain reranker.")
    parser.add_argument("--version", action="version", version=f"rerankforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in command.examples) if command.examples else None
        cmd = sub.add_parser(name, help=command.help, description=command.help, epilog=epilog,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_argument("--config", help="YAML config file, or an example config's name as `rerankforge configs` "
                                          "lists it (e.g. configs/data_prep/scifact.yaml).")
        cmd.add_argument("--print-config", action="store_true", help="Print the resolved config and exit.")
        cmd.add_argument("--explain", action="store_true", help="With --print-config: each key's meaning above it.")
        cmd.add_argument("overrides", nargs="*", metavar="key=value", help="Dotted overrides, e.g. seed=1.")
        for flag, help_text in command.flags:
            kind = {"action": "store_true"} if flag in SWITCHES else {}
            cmd.add_argument(flag, help=help_text, **kind)
    configs = sub.add_parser("configs", help="List the example configs that ship with rerankforge, or copy one here.",
                             epilog="examples:\n  rerankforge configs\n  rerankforge configs --copy "
                                    "configs/train/scifact-minilm.yaml --to my-train.yaml",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    configs.add_argument("--copy", metavar="NAME", help="The example to copy (a name as listed).")
    configs.add_argument("--to", metavar="PATH", help="Where to copy it (default: its file name, here).")
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
