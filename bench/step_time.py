"""Where a training run's time goes: seconds per training step and per dev evaluation, for a train config.

    python bench/step_time.py --config runs/quickstart/train/quickstart-train.yaml [--steps 12] [key=value ...]
    python bench/step_time.py --config runs/quickstart/train/quickstart-train.yaml model.max_length=192

Builds the run as `rerankforge train` does (same data, model, optimizer and precision), times ``--steps`` training
steps after 3 warm-up steps, then one evaluation of the dev split, and prints them with what a run of
``max_steps`` steps and ``max_steps / eval_every`` evaluations adds up to. Nothing is written but a scratch folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a train config (e.g. a quickstart's quickstart-train.yaml)")
    parser.add_argument("--steps", type=int, default=12, help="training steps timed after 3 warm-up steps")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.max_length=192")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from rerankforge.core.config import load_config
    from rerankforge.models.loading import hardware
    from rerankforge.train import run as train_run
    from rerankforge.train.config import TrainConfig
    from rerankforge.train.evaluate import evaluate

    scratch = tempfile.mkdtemp(prefix="step-time-")
    cfg = load_config(TrainConfig, args.config, [*args.overrides, f"output_dir={scratch}"])
    run = train_run.setup(cfg)
    run.model.train()
    batches = iter(run.train_dl)
    for _ in range(3):
        train_run.train_step(cfg, run, next(batches))
    start = time.perf_counter()
    for _ in range(args.steps):
        train_run.train_step(cfg, run, next(batches))
    per_step = (time.perf_counter() - start) / args.steps
    start = time.perf_counter()
    if run.dev_dl is not None:
        evaluate(run.model, run.dev_dl, run.dev, run.accelerator)
    per_eval = time.perf_counter() - start if run.dev_dl is not None else 0.0
    steps = cfg.max_steps or 0
    every = max(cfg.eval_every or steps or 1, 1)
    evals = steps // every + bool(steps % every)  # every eval_every steps, and the last
    total = steps * per_step + evals * per_eval
    print(f"| config | s / step | s / dev evaluation | steps | evaluations | minutes |\n|---|---|---|---|---|---|\n"
          f"| {' '.join(args.overrides) or 'as written'} | {per_step:.2f} | {per_eval:.1f} | {cfg.max_steps} | "
          f"{evals} | {total / 60:.1f} |")
    print(f"\n{hardware()}")


if __name__ == "__main__":
    main()
