"""Where a training run's time goes: seconds per training step and per dev evaluation, for a train config.

    python bench/step_time.py --config runs/quickstart/train/quickstart-train.yaml [--steps 12] [key=value ...]
    python bench/step_time.py --config runs/quickstart/train/quickstart-train.yaml model.max_length=192
    python bench/step_time.py --config runs/quickstart/train/quickstart-train.yaml \\
        --baseline "model.attn_implementation=sdpa optim.fused=false" --repeats 3

Builds the run as `rerankforge train` does (same data, model, optimizer and precision), times ``--steps`` training
steps after 3 warm-up steps, then one evaluation of the dev split, and prints them with what a run of
``max_steps`` steps and ``max_steps / eval_every`` evaluations adds up to. With ``--baseline``, the same config
with those overrides added is timed too, the two sides alternating ``--repeats`` times (medians reported), and
the ratio of their step times is printed. Nothing is written but scratch folders.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import tempfile
import time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a train config (e.g. a quickstart's quickstart-train.yaml)")
    parser.add_argument("--steps", type=int, default=12, help="training steps timed after 3 warm-up steps")
    parser.add_argument("--baseline", default=None,
                        help='overrides that make the baseline, timed in the same run, e.g. "optim.fused=false"')
    parser.add_argument("--repeats", type=int, default=1, choices=range(1, 100), metavar="N",
                        help="times each side is timed, alternating")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.max_length=192")
    return parser.parse_args(argv)


def time_side(config: str, overrides: list[str], steps: int) -> tuple[float, float, object]:
    """Seconds per training step and per dev evaluation of ``config`` with ``overrides``, and the config."""
    from rerankforge.core.config import load_config
    from rerankforge.train import run as train_run
    from rerankforge.train.config import TrainConfig
    from rerankforge.train.evaluate import evaluate

    cfg = load_config(TrainConfig, config, [*overrides, f"output_dir={tempfile.mkdtemp(prefix='step-time-')}"])
    run = train_run.setup(cfg)
    run.model.train()
    batches = iter(run.train_dl)
    for _ in range(3):
        train_run.train_step(cfg, run, next(batches))
    start = time.perf_counter()
    for _ in range(steps):
        train_run.train_step(cfg, run, next(batches))
    per_step = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    if run.dev_dl is not None:
        evaluate(run.model, run.dev_dl, run.dev, run.accelerator)
    per_eval = time.perf_counter() - start if run.dev_dl is not None else 0.0
    run.accelerator.end_training()
    return per_step, per_eval, cfg


def row(label: str, per_step: float, per_eval: float, cfg) -> str:
    from rerankforge.train.run import evaluates_at

    steps = cfg.max_steps or 0
    evals = sum(evaluates_at(cfg, step, steps) for step in range(1, steps + 1))
    total = steps * per_step + evals * per_eval
    return f"| {label} | {per_step:.2f} | {per_eval:.1f} | {cfg.max_steps} | {evals} | {total / 60:.1f} |"


def main(argv=None) -> None:
    args = parse_args(argv)
    from rerankforge.models.loading import hardware

    sides = {" ".join(args.overrides) or "as written": list(args.overrides)}
    if args.baseline is not None:
        sides[f"baseline: {args.baseline}"] = [*args.overrides, *shlex.split(args.baseline)]
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in sides}
    configs = {}
    for repeat in range(args.repeats):
        labels = list(sides) if repeat % 2 == 0 else list(sides)[::-1]  # alternate which side goes first
        for label in labels:
            per_step, per_eval, configs[label] = time_side(args.config, sides[label], args.steps)
            times[label].append((per_step, per_eval))
            print(f"repeat {repeat + 1}, {label}: {per_step:.3f} s / step, {per_eval:.1f} s / dev evaluation",
                  flush=True)
    medians = {label: (statistics.median(t[0] for t in rows), statistics.median(t[1] for t in rows))
               for label, rows in times.items()}
    print("\n| config | s / step | s / dev evaluation | steps | evaluations | minutes |\n|---|---|---|---|---|---|")
    for label, (per_step, per_eval) in medians.items():
        print(row(label, per_step, per_eval, configs[label]))
    if args.baseline is not None:
        first, baseline = medians.values()
        evaluation = f"; dev evaluation: {first[1] / baseline[1]:.2f}x" if baseline[1] else ""
        print(f"\nstep time / baseline's: {first[0] / baseline[0]:.2f}x (median of {args.repeats}){evaluation}")
    print(f"\n{hardware()}")


if __name__ == "__main__":
    main()
