import json
import shutil

import pytest
from conftest import WORDS, write_jsonl

from rerankforge.models import export as export_module
from rerankforge.models import openvino_backend
from rerankforge.models.export import ExportConfig, ExportError, export, gate
from rerankforge.models.reranker import Reranker

pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture
def dev_file(tmp_path, tiny_cross_encoder):
    """Six dev queries with eight candidates each; relevant: the two the torch model ranks first (dev nDCG@10 1)."""
    scorer = Reranker(tiny_cross_encoder, device="cpu")
    records = []
    for q in range(6):
        passages = [" ".join(WORDS[(q * 7 + d * 5 + k) % len(WORDS)] for k in range(12)) for d in range(8)]
        query = " ".join(WORDS[q * 3:q * 3 + 4])
        logits = scorer.score(query, passages, raw=True)
        best = sorted(range(8), key=lambda d: -logits[d])[:2]
        records.append({"query_id": f"q{q}", "query": query, "qrels": {f"q{q}d{d}": 1 for d in best},
                        "doc_ids": [f"q{q}d{d}" for d in range(8)], "scores": [1.0 - d / 10 for d in range(8)],
                        "passages": passages})
    return write_jsonl(tmp_path / "mined" / "dev.jsonl", records)


@pytest.fixture
def model(tiny_cross_encoder, tmp_path):
    folder = tmp_path / "final"
    shutil.copytree(tiny_cross_encoder, folder)
    return folder


def pairs():
    return [(" ".join(WORDS[i:i + 3]), " ".join(WORDS[i + 5:i + 20])) for i in range(0, 30, 3)]


def test_float32_export_loads_with_the_in_memory_models_scores_and_no_conversion(model, dev_file, monkeypatch):
    out = export(ExportConfig(model=str(model), dev=str(dev_file.parent), max_drop=0.0))
    assert (out / "openvino" / "openvino_model.xml").is_file() and (out / "model.safetensors").is_file()
    expected = Reranker(str(model), device="cpu", backend="openvino").score_pairs(pairs(), raw=True)

    def no_conversion(*args, **kwargs):
        raise AssertionError("an exported folder must load without converting the model again")
    monkeypatch.setattr(openvino_backend, "convert_openvino", no_conversion)
    loaded = Reranker(str(out), device="cpu", backend="openvino")
    assert loaded.exported == out / "openvino" / "openvino_model.xml" and loaded.model is None
    assert loaded.score_pairs(pairs(), raw=True) == pytest.approx(expected, abs=1e-4)
    manifest = json.loads((out / "openvino" / "manifest.json").read_text())
    assert manifest["quality_gate"]["passed"] and manifest["counts"]["dev_queries"] == 6
    assert manifest["quality_gate"]["drop"] == pytest.approx(0.0, abs=1e-9)


def test_int8_export_loads_without_calibrating_again(model, dev_file, tmp_path, monkeypatch):
    calibration = write_jsonl(tmp_path / "pairs.jsonl", [{"query": q, "passage": p} for q, p in pairs()])
    out = export(ExportConfig(model=str(model), quantize="int8", calibration=str(calibration),
                              dev=str(dev_file), on_drop="warn"))
    assert out.name == "final-openvino-int8" and (out / "openvino" / "openvino_model_qint8_quantized.xml").is_file()
    in_memory = Reranker(str(model), device="cpu", backend="openvino", quantize="int8", calibration=pairs())
    expected = in_memory.score_pairs(pairs(), raw=True)
    import nncf

    def no_calibration(*args, **kwargs):
        raise AssertionError("an exported int8 folder must load without calibrating again")
    monkeypatch.setattr(nncf, "quantize", no_calibration)
    loaded = Reranker(str(out), device="cpu", backend="openvino", quantize="int8")
    assert loaded.score_pairs(pairs(), raw=True) == pytest.approx(expected, abs=1e-4)
    assert json.loads((out / "openvino" / "manifest.json").read_text())["counts"]["calibration_pairs"] == len(pairs())


def broken_conversion(real):
    """Converts the model with its classifier negated: the export ranks every dev query backwards."""
    def convert(model, *args, **kwargs):
        import copy

        import torch

        model = copy.deepcopy(model)
        with torch.no_grad():
            model.classifier.weight.neg_()
            model.classifier.bias.neg_()
        return real(model, *args, **kwargs)
    return convert


def test_the_quality_gate_refuses_a_broken_export_and_writes_nothing(model, dev_file, monkeypatch):
    monkeypatch.setattr(export_module, "convert_openvino", broken_conversion(openvino_backend.convert_openvino))
    with pytest.raises(ExportError, match=r"fails its quality gate, so nothing was written: dev nDCG@10 on 6 "
                                          r"queries .*torch 1\.0000, exported 0\.\d{4}, a drop of 0\.\d{4}"):
        export(ExportConfig(model=str(model), dev=str(dev_file)))
    assert not (model.parent / "final-openvino").exists()
    assert not list(model.parent.glob(".final-openvino*"))


def test_on_drop_warn_keeps_the_broken_export_and_records_the_verdict(model, dev_file, monkeypatch, caplog):
    monkeypatch.setattr(export_module, "convert_openvino", broken_conversion(openvino_backend.convert_openvino))
    out = export(ExportConfig(model=str(model), dev=str(dev_file), on_drop="warn", keep_torch=False))
    verdict = json.loads((out / "openvino" / "manifest.json").read_text())["quality_gate"]
    assert not verdict["passed"] and verdict["drop"] > 0.005
    assert "fails its quality gate and is kept (on_drop=warn)" in caplog.text
    assert not list(out.glob("*.safetensors")) and Reranker(str(out), device="cpu", backend="openvino").model is None


def test_gate_verdict():
    assert gate(0.70, 0.695, 0.005)["passed"] and not gate(0.70, 0.6949, 0.005)["passed"]
    assert gate(0.70, 0.72, 0.0) == {"torch_ndcg@10": 0.70, "export_ndcg@10": 0.72, "drop": pytest.approx(-0.02),
                                     "max_drop": 0.0, "passed": True}


def test_missing_inputs_are_reported_together(model, tmp_path):
    with pytest.raises(ExportError) as error:
        export(ExportConfig(model=str(model), quantize="int8", max_drop=-1))
    message = str(error.value)
    assert "the quality gate needs a dev split: the model names no training set. Pass dev=runs/mine/" in message
    assert "quantize=int8 needs calibration pairs" in message and "max_drop must be >= 0, got -1" in message
    with pytest.raises(ExportError, match="is not a folder"):
        export(ExportConfig(model=str(tmp_path / "nope")))


def test_the_training_runs_mined_set_is_the_default_dev_split_and_calibration(model, dev_file, monkeypatch):
    monkeypatch.chdir(dev_file.parent.parent)
    (model.parent / "manifest.json").write_text(json.dumps({"inputs": {"train": {"path": "mined"}}}))
    _, out, dev, calibration = export_module.resolve_inputs(ExportConfig(model=str(model), quantize="int8"))
    assert dev.resolve() == dev_file.resolve() and calibration == "mined" and out.name == "final-openvino-int8"


def test_cli_export_prints_both_figures(model, dev_file, capsys):
    from rerankforge.cli import main

    assert main(["export", "--model", str(model), "--dev", str(dev_file), "--out", str(model.parent / "ov")]) == 0
    printed = capsys.readouterr().out
    assert f"Exported to {model.parent / 'ov'} (dev nDCG@10: torch 1.0000, exported 1.0000)" in printed and "no calibration" in printed
    assert main(["export", "--model", str(model)]) == 2
    assert "the quality gate needs a dev split" in capsys.readouterr().err
