"""The ``rerankforge`` command: ``rerankforge mine --config configs/data_prep/scifact.yaml [key=value ...]``.

Each subcommand takes ``--config FILE`` plus dotted ``key=value`` overrides, and ``--print-config`` to show
the resolved config without running anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Optional, Sequence

from rerankforge import __version__
from rerankforge.utils.config import ConfigError, dump_yaml, load_config
from rerankforge.utils.progress import quiet_progress_when_not_a_tty


def _mine(args: argparse.Namespace) -> int:
    from rerankforge.data_prep.config import MineConfig

    cfg = load_config(MineConfig, args.config, args.overrides)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    from rerankforge.data_prep.mine import mine

    out = mine(cfg)
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    given = f"{counts['given_negatives']} given + " if counts.get("given_negatives") else ""
    print(f"Mined {counts['queries_mined']} queries ({counts['rows']} query-positive rows): "
          f"{given}{counts['hard_negatives']} hard + {counts['easy_negatives']} easy negatives; "
          f"{counts['queries_short']} queries short of mining.num_negatives={cfg.mining.num_negatives} hard ones "
          "got random ones instead.")
    print(f"Wrote {out}/dataset, {out}/manifest.json and {out}/config.yaml")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from rerankforge.data_prep.config import SynthConfig

    cfg = load_config(SynthConfig, args.config, args.overrides)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    from rerankforge.data_prep.synth import synth

    out = synth(cfg)
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    dropped = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items() if n) or "none"
    print(f"Kept {counts['queries_kept']} of {counts['queries_generated']} generated queries from "
          f"{counts['passages_sampled']} passages (dropped: {dropped}).")
    print(f"Wrote {out}/queries.jsonl, {out}/qrels/train.tsv and {out}/manifest.json. Mine with: rerankforge mine "
          f"data.queries={out}/queries.jsonl data.qrels={out}/qrels/train.tsv ...")
    return 0


def _train(args: argparse.Namespace) -> int:
    from rerankforge.train.config import TrainConfig

    if args.print_config:
        print(dump_yaml(load_config(TrainConfig, args.config, args.overrides)), end="")
        return 0
    from rerankforge.train.run import cli as train_cli  # the same entry point as `python train/run.py`

    return train_cli((["--config", args.config] if args.config else []) + list(args.overrides))


def _eval(args: argparse.Namespace) -> int:
    from rerankforge.eval.config import EvalConfig

    if args.print_config:
        print(dump_yaml(load_config(EvalConfig, args.config, args.overrides)), end="")
        return 0
    from rerankforge.eval.run import cli as eval_cli

    return eval_cli((["--config", args.config] if args.config else []) + list(args.overrides))


def _serve(args: argparse.Namespace) -> int:
    from rerankforge.serve import ServeConfig, serve

    overrides = list(args.overrides) + [f"{k}={v}" for k in ("model", "pipeline", "host", "port")
                                        if (v := getattr(args, k, None)) is not None]
    cfg = load_config(ServeConfig, args.config, overrides)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    serve(cfg)
    return 0


def _push(args: argparse.Namespace) -> int:
    from rerankforge.models.publish import PushConfig, push

    overrides = list(args.overrides) + [f"{k}={v}" for k in ("model", "repo_id", "out", "eval_report")
                                        if (v := getattr(args, k, None)) is not None]
    overrides += [f"{k}=true" for k in ("private", "dry_run") if getattr(args, k, False)]
    cfg = load_config(PushConfig, args.config, overrides)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    print(push(cfg))
    return 0


def _export(args: argparse.Namespace) -> int:
    from rerankforge.models.export import ExportConfig

    overrides = list(args.overrides) + [f"{k}={v}" for k in ("model", "out", "backend", "quantize", "calibration", "dev")
                                        if (v := getattr(args, k, None)) is not None]
    cfg = load_config(ExportConfig, args.config, overrides)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    from rerankforge.models.export import export

    out = export(cfg)
    verdict = json.loads((out / "openvino" / "manifest.json").read_text())["quality_gate"]
    print(f"Exported to {out} (dev nDCG@10: torch {verdict['torch_ndcg@10']:.4f}, exported "
          f"{verdict['export_ndcg@10']:.4f}). Load it with backend=openvino"
          f"{' quantize=int8' if cfg.quantize else ''}; no calibration is needed at load.")
    return 0


def _quickstart(args: argparse.Namespace) -> int:
    from rerankforge.quickstart import QuickstartConfig, quickstart
    from rerankforge.quickstart_summary import summary_table

    default = Path(__file__).resolve().parent / "configs" / "quickstart.yaml"
    overrides = list(args.overrides) + [f"{k}={v}" for k in ("data", "corpus", "queries", "qrels")
                                        if (v := getattr(args, k, None))]
    cfg = load_config(QuickstartConfig, args.config or (default if default.exists() else None), overrides)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    print(summary_table(quickstart(cfg)))
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "quickstart": ("The whole main job on your data (default SciFact), sized for a CPU: mine -> train -> eval -> "
                   "report.", _quickstart),
    "synth": ("Generate training queries for a corpus with no labels (cold start) with a local LLM or an endpoint.",
              _synth),
    "mine": ("Mine hard negatives from a corpus and labelled queries into a training set.", _mine),
    "train": ("Fine-tune a cross-encoder reranker on a mined training set (single process; use "
              "`accelerate launch train/run.py` for several).", _train),
    "serve": ("Serve a reranker (Cohere /v1|v2/rerank, TEI /rerank) and optionally the pipeline (/v1/query).",
              _serve),
    "export": ("Write an OpenVINO (float32 or int8) copy of a checkpoint that loads without recalibrating; "
               "refuses one that loses dev nDCG@10.", _export),
    "push": ("Publish a checkpoint to the Hugging Face Hub (--dry-run: write and validate the folder only).", _push),
    "eval": ("Evaluate retrieve → rerank → generate with several rerankers side by side; write a report.", _eval),
}


FLAGS = {  # shortcuts for the keys of these commands' configs
    "quickstart": [("--data", "Your data: a BEIR folder, a .jsonl/.parquet/.csv file or saved dataset of (query, "
                              "positive[, negative ...]) rows, or a Hugging Face dataset id (default: "
                              "$RERANKFORGE_DATA_DIR/scifact, else download)."),
                   ("--corpus", "Corpus file (with --queries and --qrels; a test split is held out of the qrels)."),
                   ("--queries", "Queries file."), ("--qrels", "Qrels file (query-id, corpus-id, score).")],
    "serve": [("--model", "Checkpoint to serve (model=...)."), ("--pipeline", "Eval config enabling /v1/query."),
              ("--host", "Bind address (default 127.0.0.1)."), ("--port", "Port (default 8000).")],
    "export": [("--model", "Checkpoint folder, e.g. runs/x/final."), ("--out", "Output folder (default <model>-openvino)."),
               ("--backend", "openvino (default)."), ("--quantize", "int8: static int8, calibrated on --calibration."),
               ("--calibration", "Pairs for int8 (a mined set; default: the model's training set)."),
               ("--dev", "Dev split for the quality gate (a mined folder; default: the training set's).")],
    "push": [("--model", "Checkpoint folder, e.g. runs/x/final."), ("--repo-id", "Hub repo, user/name."),
             ("--out", "Where --dry-run writes the folder."), ("--private", "Create a private repo."),
             ("--dry-run", "Write and validate the upload folder; upload nothing."),
             ("--eval-report", "A `rerankforge eval` report.json of this model; its figures join the card.")],
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rerankforge", description="Turn a general reranker into a domain reranker.")
    parser.add_argument("--version", action="version", version=f"rerankforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, _) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--config", help="YAML config file (see configs/).")
        cmd.add_argument("--print-config", action="store_true", help="Print the resolved config and exit.")
        cmd.add_argument("overrides", nargs="*", metavar="key=value", help="Dotted overrides, e.g. seed=1.")
        for flag, help_text in FLAGS.get(name, []):
            kind = {"action": "store_true"} if flag in ("--private", "--dry-run") else {}
            cmd.add_argument(flag, help=help_text, **kind)
    return parser


def _error_log(command: str) -> Path:
    """Where an error's traceback goes: ``$RERANKFORGE_ERROR_LOG`` (set by the quickstart for its train stage),
    else a file in the temp folder."""
    import tempfile

    from rerankforge.quickstart import ERROR_LOG_ENV

    default = Path(tempfile.gettempdir()) / f"rerankforge-{command}-{os.getpid()}.log"
    return Path(os.environ.get(ERROR_LOG_ENV) or default)


def _report(command: str, message: str, details: str = "") -> Optional[Path]:
    """Print ``rerankforge <command>: error: <message>``; keep it (and ``details``) in the error log when the
    caller asked for one (or there are details to keep). Returns the log's path when written."""
    from rerankforge.quickstart import ERROR_LOG_ENV

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
    from rerankforge.data_prep.problems import DataError
    from rerankforge.data_prep.synth import SynthError
    from rerankforge.models.export import ExportError
    from rerankforge.models.publish import PushError
    from rerankforge.models.resolve import ModelNotFoundError
    from rerankforge.quickstart import StageError, one_line

    try:
        return COMMANDS[args.command][1](args)
    except KeyboardInterrupt:
        kept = "; finished stages are kept and reused by the next run" if args.command == "quickstart" else ""
        print(f"rerankforge {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    except SynthError as exc:
        _report(args.command, str(exc))
        return 1
    except StageError as exc:
        _report(args.command, str(exc))
        return exc.exit_code
    except (ConfigError, DataError, ModelNotFoundError, FileNotFoundError, PushError, ExportError) as exc:
        _report(args.command, str(exc))
        return 2
    except Exception as exc:  # a bug or an environment problem: one line, the traceback in a file
        if os.environ.get("RERANKFORGE_DEBUG") == "1":
            raise
        _report(args.command, one_line(exc), traceback.format_exc())
        return 1


if __name__ == "__main__":
    sys.exit(main())
