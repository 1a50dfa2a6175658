"""The Python API: every public name imports; mine → train → evaluate through Python gives what the CLI gives."""

import importlib
import json

import pytest
from conftest import make_beir

import rerankforge
from rerankforge.cli import main
from rerankforge.core.config import as_overrides

PUBLIC = {"Reranker", "Judge", "JudgeConfig", "mine", "synth", "train", "evaluate", "quickstart", "export", "push", "MineConfig",
          "SynthConfig", "TrainConfig", "EvalConfig", "QuickstartConfig", "ExportConfig", "PushConfig", "ServeConfig"}


def test_every_public_name_imports_and_the_stage_functions_are_callable():
    from rerankforge import (  # noqa: F401
        EvalConfig,
        ExportConfig,
        Judge,
        JudgeConfig,
        MineConfig,
        PushConfig,
        QuickstartConfig,
        Reranker,
        ServeConfig,
        SynthConfig,
        TrainConfig,
        evaluate,
        export,
        mine,
        push,
        quickstart,
        synth,
        train,
    )

    assert PUBLIC <= set(dir(rerankforge)) and PUBLIC <= set(rerankforge.__all__)
    importlib.import_module("rerankforge.quickstart")  # binds the module to rerankforge.quickstart
    importlib.import_module("rerankforge.train.run")  # binds the subpackage to rerankforge.train
    from rerankforge import quickstart as qs_now
    from rerankforge import train as train_now
    from rerankforge.eval import evaluate as eval_evaluate

    assert callable(train_now) and callable(qs_now) and eval_evaluate is evaluate
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rerankforge.nope  # noqa: B018


def _stages(tmp_path, tiny_encoder, tiny_cross_encoder):
    beir = make_beir(tmp_path / "beir", n_train=16, n_test=3)
    mine = {"data.path": beir, "data.dev_fraction": 0.25, "data.dev_min_queries": 2, "data.dev_depth": 6,
            "first_stage.method": "hybrid", "first_stage.encoder.name_or_path": tiny_encoder,
            "first_stage.encoder.batch_size": 8, "mining.range_max": 20, "mining.num_negatives": 3,
            "mining.relative_margin": None, "cache_dir": tmp_path / "cache"}
    train = {"model.name_or_path": tiny_cross_encoder, "model.max_length": 48, "model.max_query_length": 16,
             "data.group_size": 4, "data.dev": "mined", "data.dev_depth": 6, "batch_size": 2, "max_steps": 4,
             "eval_every": 2, "optim.lr": 1e-3, "optim.warmup_ratio": 0}
    evaluate = {"data.path": beir, "first_stage.method": "hybrid", "retrieve.top_k": 10,
                "first_stage.encoder.name_or_path": tiny_encoder, "generate.kind": "none",
                "rerankers": {"none": {"model": None}}, "cache_dir": tmp_path / "cache", "plots": False}
    return mine, train, evaluate


def test_mine_train_evaluate_through_python_equal_the_cli(tmp_path, tiny_encoder, tiny_cross_encoder):
    mine_over, train_over, eval_over = _stages(tmp_path, tiny_encoder, tiny_cross_encoder)
    mined = rerankforge.mine(None, {**mine_over, "output_dir": tmp_path / "py" / "mine"})
    trained = rerankforge.train(None, {**train_over, "data.train": mined.output_dir,
                                       "output_dir": tmp_path / "py" / "train"})
    finetuned = {"finetuned": {"model": str(trained.final), "depth": 5, "max_length": 48,
                               "fusion": {"method": "interpolation", "alpha": "0.5"}}}
    report = rerankforge.evaluate(None, {**eval_over, "rerankers": {**eval_over["rerankers"], **finetuned},
                                         "output_dir": tmp_path / "py" / "eval"})

    cli = tmp_path / "cli"
    assert main(["mine", *as_overrides({**mine_over, "output_dir": cli / "mine"})]) == 0
    assert main(["train", *as_overrides({**train_over, "data.train": cli / "mine", "output_dir": cli / "train"})]) == 0
    finetuned["finetuned"]["model"] = str(cli / "train" / "final")
    assert main(["eval", *as_overrides({**eval_over, "rerankers": {**eval_over["rerankers"], **finetuned},
                                        "output_dir": cli / "eval"})]) == 0

    assert mined.counts == json.loads((cli / "mine" / "manifest.json").read_text())["counts"]
    from datasets import load_from_disk

    assert mined.dataset().to_list() == load_from_disk(str(cli / "mine" / "dataset")).to_list()
    assert trained.final == tmp_path / "py" / "train" / "final" and trained.best_dev is not None
    cli_train = json.loads((cli / "train" / "manifest.json").read_text())
    assert trained.best_dev == cli_train["best_dev_ndcg@10"]
    assert (trained.output_dir / "metrics.jsonl").read_text() == (cli / "train" / "metrics.jsonl").read_text()
    cli_report = json.loads((cli / "eval" / "report.json").read_text())
    assert report.metrics["finetuned"] == cli_report["rerankers"]["finetuned"]["metrics"]
    assert report.metrics["finetuned-alone"] == cli_report["rerankers"]["finetuned"]["alone"]["metrics"]
    assert report.metrics["none"] == cli_report["rerankers"]["none"]["metrics"]
    assert report.report.read_text().startswith("# rerankforge evaluation")


def test_a_config_object_a_packaged_example_and_overrides_resolve_alike(tmp_path, monkeypatch):
    from rerankforge.api import resolve_config
    from rerankforge.train.config import TrainConfig

    monkeypatch.chdir(tmp_path)  # outside the checkout: the example configs ship with the package
    by_name = resolve_config("train", "configs/train/scifact-minilm.yaml", ["optim.lr=1e-4"])
    assert isinstance(by_name, TrainConfig) and by_name.optim.lr == 1e-4
    from_object = resolve_config("train", by_name, {"seed": 7, "model.max_length": 128})
    assert (from_object.seed, from_object.model.max_length, from_object.optim.lr) == (7, 128, 1e-4)
    assert resolve_config("quickstart").train.max_steps == 300  # no config: the packaged quickstart.yaml
