"""``rerankforge eval --config configs/eval/covidqa.yaml [key=value ...]`` (also ``python -m rerankforge.eval.run``).

Loads and checks the data and the config, runs every labelled query through retrieve → rerank → generate for
each configured reranker, and writes ``report.md``, ``report.json``, ``per_query.jsonl``, ``runs/*.trec``,
``plots/*.png``, the resolved ``config.yaml`` and ``manifest.json`` to ``output_dir`` (atomically).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from rerankforge.core import distributed
from rerankforge.core.config import ConfigError, dump_yaml, raise_problems, to_dict
from rerankforge.core.io import atomic_output_dir, git_commit, hash_path, resolve_cache_dir, versions, write_json
from rerankforge.eval.config import EvalConfig, check_eval_config
from rerankforge.eval.data import load_eval_data
from rerankforge.eval.measure import compare_first_stages, run_pipeline, runs_of, summarize
from rerankforge.eval.pick import pick_first_stage
from rerankforge.eval.pipeline import Pipeline
from rerankforge.eval.report import write_report
from rerankforge.retrieval.loaders import load_query_texts


def evaluate(cfg: EvalConfig, command: str = "rerankforge eval") -> Path:
    """Run the evaluation ``cfg`` describes; returns the path of ``report.md``.

    Raises:
        ConfigError: every config problem at once. DataError: every data problem at once.
    """
    raise_problems(check_eval_config(cfg))
    data = load_eval_data(cfg.data, cache_dir=resolve_cache_dir(cfg.cache_dir))
    if not data.qrels:
        raise ConfigError(f"No query with a positive label in {data.sources.get('qrels')} (data.split="
                          f"{cfg.data.split}); nothing to evaluate.")
    cfg, pipeline = build_pipeline(cfg, data)
    records = run_pipeline(pipeline, data)
    first_stages = compare_first_stages(pipeline, data)
    if cfg.first_stage.method in first_stages:  # its row and run file are the run that was reranked: a bf16
        # encoder can rank a query searched alone a little differently from the same query in a batch
        first_stages[cfg.first_stage.method] = runs_of(records, [])["first_stage"]
    summary = summarize(pipeline, data, records, first_stages)
    inputs = {**data.sources, **({"pick_queries": cfg.retrieve.pick.queries} if cfg.retrieve.pick.queries else {})}
    manifest = {"stage": "eval", "config": to_dict(cfg),
                "inputs": {name: {"path": path, "sha256": hash_path(path)} for name, path in inputs.items()},
                "counts": {k: v for k, v in summary["data"].items() if k != "sources"},
                "versions": versions(), "git_commit": git_commit(), "command": command}
    procs = distributed.state()
    manifest["processes"] = procs.num_processes  # accelerate launch --num_processes
    if procs.is_main_process:  # every process holds the gathered records; one writes the report
        with atomic_output_dir(cfg.output_dir) as scratch:
            runs = {**runs_of(records, list(pipeline.rerankers)),
                    **{f"first_stage-{method}": run for method, run in first_stages.items()}}
            write_report(scratch, summary, records, data.answers, runs, command, cfg.plots)
            (scratch / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
            write_json(scratch / "manifest.json", manifest)
    procs.wait_for_everyone()
    return Path(cfg.output_dir) / "report.md"


def build_pipeline(cfg: EvalConfig, data):
    """``(cfg, pipeline)``: the pipeline over ``data``'s corpus, and ``cfg`` with ``first_stage.method=auto`` resolved
    to the first stage a judge's choices on unlabelled questions favour (``eval/pick.py``), its reason recorded."""
    if cfg.first_stage.method != "auto":
        return cfg, Pipeline.from_corpus(cfg, data.corpus)
    questions = load_query_texts(cfg.retrieve.pick.queries, cfg.data.fields)  # a bad file fails before any model
    cfg = copy.deepcopy(cfg)
    cfg.first_stage.method = "hybrid"  # a hybrid stage runs all three
    pipeline = Pipeline.from_corpus(cfg, data.corpus)
    pipeline.use_first_stage(*pick_first_stage(pipeline, questions, cfg.seed))
    cfg.first_stage = copy.deepcopy(pipeline.cfg.first_stage)
    return cfg, pipeline


if __name__ == "__main__":  # `python -m rerankforge.eval.run --config ...`: the `rerankforge eval` command
    from rerankforge.cli import main as rerankforge_main

    sys.exit(rerankforge_main(["eval", *sys.argv[1:]]))
