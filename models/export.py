"""``rerankforge export --model runs/x/final --backend openvino [--quantize int8 --calibration runs/mine/x]``

Writes a model folder that ``Reranker``, ``rerankforge eval`` and ``rerankforge serve`` load with
``backend=openvino`` (and ``quantize=int8``) as it is, with no conversion or int8 calibration at load, and that
``rerankforge push`` publishes: the checkpoint's files (torch weights, tokenizer, card, ``fusion.json``,
``calibration.json``) plus ``openvino/openvino_model.xml`` (float32) or ``openvino/openvino_model_qint8_quantized.xml``
(int8), the names sentence-transformers' OpenVINO backend uses.

Quality gate: the exported model and the torch model rerank the dev split of the data the model was trained on;
when the export's nDCG@10 is more than ``max_drop`` below the torch model's, export refuses (nothing is written)
or, with ``on_drop=warn``, writes the folder and warns. ``openvino/manifest.json`` records both figures.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from rerankforge.core.config import to_dict
from rerankforge.core.dev_split import DEV_FILE, DevSet, read_dev
from rerankforge.core.errors import InputError
from rerankforge.core.io import atomic_output_dir, git_commit, hash_path, versions, write_json
from rerankforge.core.metrics import evaluate_run
from rerankforge.models.openvino_backend import OPENVINO_FOLDER, convert_openvino, load_calibration_pairs, save_openvino
from rerankforge.models.reranker import Reranker

logger = logging.getLogger(__name__)
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "model*.safetensors.index.json")


class ExportError(InputError, RuntimeError):
    """The export could not be made, or failed its quality gate; nothing was written."""


@dataclass
class ExportConfig:
    model: Optional[str] = None  # a checkpoint folder (final/ of a training run)
    out: Optional[str] = None  # the folder written; default: <model>-openvino, or <model>-openvino-int8
    backend: Literal["openvino"] = "openvino"  # the format written; OpenVINO (CPU) is the only one
    quantize: Optional[Literal["int8"]] = None  # int8: static int8, calibrated on `calibration`; null: float32
    calibration: Optional[str] = None  # int8 ranges: pairs or a mined set; default: the model's training set
    calibration_pairs: int = 256  # int8: (query, passage) pairs read from `calibration` to set its ranges
    dev: Optional[str] = None  # the gate's dev split: a dev.jsonl or a mined folder; default: the training set's
    dev_depth: int = 20  # first-stage candidates reranked per dev query
    max_dev_queries: Optional[int] = None  # the gate reranks the first N dev queries only (faster); null: all
    max_drop: float = 0.005  # largest dev nDCG@10 loss the gate lets through
    on_drop: Literal["refuse", "warn"] = "refuse"  # past max_drop: refuse (write nothing), or warn and write it
    keep_torch: bool = True  # False: the folder holds only the OpenVINO model (CrossEncoder cannot load it then)
    max_length: Optional[int] = None  # tokens of each (query, passage) pair; default: the model's
    batch_size: int = 32  # (query, passage) pairs per forward pass, in calibration and the gate


def training_set(model: Path) -> Optional[Path]:
    """The mined training set a ``final/`` folder was trained on, from its run's manifest, when it still exists."""
    manifest = model.parent / "manifest.json"
    if not manifest.is_file():
        return None
    path = json.loads(manifest.read_text(encoding="utf-8")).get("inputs", {}).get("train", {}).get("path")
    return Path(path) if path and Path(path).is_dir() else None


def resolve_inputs(cfg: ExportConfig) -> tuple[Path, Path, Path, Optional[str]]:
    """``(model, out, dev file, calibration source)``, every problem reported together.

    Raises:
        ExportError: no model folder, no dev split for the gate, or no calibration pairs for int8.
    """
    if not cfg.model or not Path(cfg.model).is_dir():
        raise ExportError(f"--model {cfg.model!r} is not a folder. Pass a checkpoint folder such as runs/train/x/final.")
    model = Path(cfg.model)
    mined = training_set(model)
    problems = []
    dev = Path(cfg.dev) if cfg.dev else (mined / DEV_FILE if mined else None)
    if dev is not None and dev.is_dir():
        dev = dev / DEV_FILE
    if dev is None or not dev.is_file():
        found = f"found none at {dev}" if dev else "the model names no training set"
        problems.append(f"the quality gate needs a dev split: {found}. Pass dev=runs/mine/<name> (a mined folder "
                        f"with {DEV_FILE}).")
    calibration = cfg.calibration or (str(mined) if mined else None)
    if cfg.quantize == "int8" and calibration is None:
        problems.append("quantize=int8 needs calibration pairs and the model names no training set: pass "
                        "calibration=runs/mine/<name> (a mined set) or a file of query/passage records.")
    if cfg.max_drop < 0:
        problems.append(f"max_drop must be >= 0, got {cfg.max_drop}.")
    if problems:
        raise ExportError("cannot export:\n" + "\n".join(f"  - {p}" for p in problems))
    suffix = "-openvino-int8" if cfg.quantize else "-openvino"
    out = Path(cfg.out) if cfg.out else model.with_name(model.name + suffix)
    if out.resolve() == model.resolve():
        raise ExportError(f"out={out} is the model folder itself; choose another folder.")
    return model, out, dev, calibration


def rerank_dev(reranker, dev: DevSet, limits=None) -> dict[str, dict[str, float]]:
    """The dev first stage reranked by ``reranker``'s raw logits (passages fitted by ``limits``, default the
    reranker's own)."""
    logits = reranker.score_pairs([(query, passage) for _, _, query, passage in dev.pairs], raw=True, limits=limits,
                                  progress=True)
    run: dict[str, dict[str, float]] = {q: {} for q in dev.qrels}
    for (query_id, doc_id, _, _), logit in zip(dev.pairs, logits):
        run[query_id][doc_id] = logit
    return run


def gate(torch_ndcg: float, export_ndcg: float, max_drop: float) -> dict:
    """The quality gate's verdict: ``passed`` when the export loses at most ``max_drop`` dev nDCG@10."""
    drop = torch_ndcg - export_ndcg
    return {"torch_ndcg@10": torch_ndcg, "export_ndcg@10": export_ndcg, "drop": drop, "max_drop": max_drop,
            "passed": drop <= max_drop + 1e-12}


def export(cfg: ExportConfig) -> Path:
    """Convert, save, reload and check; returns the output folder.

    Raises:
        ExportError: bad inputs, or the gate failed with ``on_drop=refuse`` (the message has both figures).
    """
    model, out, dev_file, calibration = resolve_inputs(cfg)
    dev = read_dev(dev_file, cfg.dev_depth, cfg.max_dev_queries)
    torch_model = Reranker(str(model), max_length=cfg.max_length, device="cpu", batch_size=cfg.batch_size)
    pairs = load_calibration_pairs(calibration, cfg.calibration_pairs) if cfg.quantize else None
    torch_ndcg = evaluate_run(dev.qrels, rerank_dev(torch_model, dev), ["ndcg@10"])["ndcg@10"]
    with atomic_output_dir(out) as scratch:
        shutil.copytree(model, scratch, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        ov_model = convert_openvino(torch_model.model.float(), torch_model._encode, cfg.quantize, pairs,
                                    cfg.batch_size)
        save_openvino(ov_model, scratch, cfg.quantize)
        if not cfg.keep_torch:
            for pattern in WEIGHT_FILES:
                for path in scratch.glob(pattern):
                    path.unlink()
        exported = Reranker(str(scratch), max_length=torch_model.max_length, device="cpu",
                            batch_size=cfg.batch_size, backend="openvino", quantize=cfg.quantize)
        verdict = gate(torch_ndcg, evaluate_run(dev.qrels, rerank_dev(exported, dev), ["ndcg@10"])["ndcg@10"],
                       cfg.max_drop)
        figures = (f"dev nDCG@10 on {len(dev.qrels)} queries ({dev_file}): torch {verdict['torch_ndcg@10']:.4f}, "
                   f"exported {verdict['export_ndcg@10']:.4f}, a drop of {verdict['drop']:.4f} (max_drop "
                   f"{cfg.max_drop})")
        if not verdict["passed"] and cfg.on_drop == "refuse":
            raise ExportError(f"the export fails its quality gate, so nothing was written: {figures}. Calibrate "
                              "int8 on more in-domain pairs (calibration_pairs=...), export float32 (drop quantize), "
                              "or pass on_drop=warn to keep it anyway.")
        if not verdict["passed"]:
            logger.warning("The export fails its quality gate and is kept (on_drop=warn): %s.", figures)
        write_export_manifest(scratch, cfg, model, dev_file, calibration, pairs, dev, verdict)
    logger.info("Exported %s to %s: %s.", model, out, figures)
    return out


def write_export_manifest(folder: Path, cfg: ExportConfig, model: Path, dev_file: Path, calibration: Optional[str],
                          pairs, dev: DevSet, verdict: dict) -> None:
    inputs = {"model": {"path": str(model), "sha256": hash_path(model)},
              "dev": {"path": str(dev_file), "sha256": hash_path(dev_file)}}
    if cfg.quantize:
        inputs["calibration"] = {"path": calibration, "sha256": hash_path(calibration)}
    write_json(folder / OPENVINO_FOLDER / "manifest.json", {
        "stage": "export", "config": to_dict(cfg), "versions": versions(), "git_commit": git_commit(),
        "inputs": inputs, "counts": {"calibration_pairs": len(pairs or []), "dev_queries": len(dev.qrels),
                                     "dev_pairs": len(dev.pairs)},
        "quality_gate": verdict})
