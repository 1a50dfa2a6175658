"""OpenVINO inference for ``Reranker(..., backend="openvino")``: float32, or static int8 calibrated on your pairs.

On x86 CPUs OpenVINO runs the same cross-encoder faster than eager PyTorch; its static int8 (NNCF post-training
quantization, calibrated on in-domain (query, passage) pairs) uses the CPU's VNNI int8 units. bench/rerank.py
measures both against sentence-transformers' ``CrossEncoder.predict``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from rerankforge.core.extras import require
from rerankforge.core.readers import read_records
from rerankforge.models import loading


def require_openvino(quantize: Optional[str]):
    """``(openvino, nncf or None)``; raises ImportError with the pip command when a needed package is missing."""
    openvino = require("openvino", "backend='openvino'")
    if quantize is None:
        return openvino, None
    return openvino, require("nncf", "backend='openvino' with quantize='int8'")


def int8_parameters(nncf, **settings):
    """NNCF's ``AdvancedQuantizationParameters`` for this CPU, with ``settings`` added.

    Without VNNI or AMX (AVX2-only CPUs), OpenVINO sums int8 products in 16 bits, and those sums saturate. So there
    every layer's weights are quantized to 7 bits (``OverflowFix.ENABLE``). On an AVX2-only EPYC, a tiny BERT's
    int8 embeddings fell to cosine 0.89 against torch without it. With VNNI or AMX, NNCF's default applies: the fix
    on the first layer only."""
    # optional extra [openvino]
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    if not int8_has_vnni():
        settings.setdefault("overflow_fix", OverflowFix.ENABLE)
    return AdvancedQuantizationParameters(**settings)


def int8_has_vnni() -> bool:
    """Whether this CPU adds int8 products in 32 bits: AVX512-VNNI, AVX-VNNI or AMX (Linux's /proc/cpuinfo flags)."""
    return bool(loading.cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


OPENVINO_FOLDER = "openvino"  # where sentence-transformers' OpenVINO backend looks, inside a model folder
OPENVINO_FILES = {None: "openvino_model.xml", "int8": "openvino_model_qint8_quantized.xml"}


def exported_model(folder, quantize: Optional[str]) -> Optional[Path]:
    """The OpenVINO model ``rerankforge export`` wrote into ``folder`` for ``quantize``, or None."""
    path = Path(folder) / OPENVINO_FOLDER / OPENVINO_FILES.get(quantize, "")
    return path if path.is_file() else None


def convert_openvino(model: torch.nn.Module, encode: Callable[[Sequence[tuple[str, str]]], dict],
                     quantize: Optional[str] = None, calibration: Optional[Sequence[tuple[str, str]]] = None,
                     batch_size: int = 32):
    """Convert a one-logit sequence-classification model to an ``openvino.Model``, int8 when asked.

    Args:
        model: the float32 torch model, in eval mode.
        encode: ``pairs -> {input name: LongTensor[B, L]}``, the tokenizer call the reranker uses.
        quantize: None (float32) or "int8" (static int8 of weights and activations, calibrated on ``calibration``).
        calibration: (query, passage) pairs like those you will score; required for "int8". 100-300 are enough.
    Raises:
        ValueError: ``quantize`` is not None/"int8", or "int8" without calibration pairs.
        ImportError: openvino (or nncf for int8) is not installed; the message has the pip command.
    """
    if quantize not in OPENVINO_FILES:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}.")
    if quantize == "int8" and not calibration:
        raise ValueError("backend='openvino' with quantize='int8' needs calibration=[(query, passage), ...]: a few "
                         "hundred in-domain pairs like those you will rerank (e.g. training queries with their "
                         "first-stage candidates), so the int8 ranges fit your data. Or load a folder that "
                         "`rerankforge export --quantize int8` wrote, which needs none.")
    ov, nncf = require_openvino(quantize)
    example = encode([("query", "passage")])
    with torch.inference_mode():
        ov_model = ov.convert_model(model, example_input=dict(example))
    if quantize == "int8":
        batches = [encode(calibration[i:i + batch_size]) for i in range(0, len(calibration), batch_size)]
        dataset = nncf.Dataset(batches, lambda batch: {k: v.numpy() for k, v in batch.items()})
        ov_model = nncf.quantize(ov_model, dataset, model_type=nncf.ModelType.TRANSFORMER,
                                 subset_size=len(batches), advanced_parameters=int8_parameters(nncf))
    return ov_model


def compile_config(bf16: bool, throughput: bool = False) -> dict:
    """OpenVINO CPU settings. The precision hint is always explicit: without f32, OpenVINO may run float32 layers
    in bfloat16 on CPUs that have it (AMX), and float32 outputs would no longer match torch's. ``throughput``
    gives one stream per few cores (the bi-encoder's ``_Streams`` runs a slice of each batch on each), else one
    stream on all."""
    return {"PERFORMANCE_HINT": "THROUGHPUT" if throughput else "LATENCY",
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"}


def compile_ov(ov_model) -> Callable[[dict], torch.Tensor]:
    """Compile an ``openvino.Model`` (or the path of a saved one) for the CPU: ``forward(batch) -> logits[B]``."""
    ov, _ = require_openvino(None)
    compiled = ov.Core().compile_model(ov_model if not isinstance(ov_model, (str, Path)) else str(ov_model), "CPU",
                                       compile_config(bf16=False))
    names = [port.any_name for port in compiled.inputs]

    def forward(batch: dict) -> torch.Tensor:
        outputs = compiled({name: batch[name].numpy() for name in names})
        return torch.from_numpy(outputs[0]).reshape(-1).float()

    return forward


def compile_openvino(model: torch.nn.Module, encode: Callable[[Sequence[tuple[str, str]]], dict],
                     quantize: Optional[str] = None, calibration: Optional[Sequence[tuple[str, str]]] = None,
                     batch_size: int = 32) -> Callable[[dict], torch.Tensor]:
    """``convert_openvino`` then ``compile_ov``: ``forward(batch) -> logits[B]`` (float32 tensor)."""
    return compile_ov(convert_openvino(model, encode, quantize, calibration, batch_size))


def save_openvino(ov_model, folder, quantize: Optional[str]) -> Path:
    """Write ``ov_model`` where ``exported_model(folder, quantize)`` finds it (weights kept as they are)."""
    ov, _ = require_openvino(None)
    path = Path(folder) / OPENVINO_FOLDER / OPENVINO_FILES[quantize]
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(path), compress_to_fp16=False)
    return path


def load_calibration_pairs(path: str, limit: int = 256) -> list[tuple[str, str]]:
    """Up to ``limit`` (query, passage) pairs for int8 calibration, from a file or folder ``data_prep`` reads.

    Accepts records with ``query`` + ``passage`` (JSONL/TSV/CSV), or a mined training set (``rerankforge mine``'s
    ``dataset/`` folder, or any file with ``query``, ``positive`` and optional ``negatives``): its query-positive
    and query-negative pairs are exactly the in-domain pairs a reranker sees.

    Raises:
        ValueError: the path cannot be read, or no record has the fields above (says which were found).
    """
    folder = Path(path)
    source = folder / "dataset" if (folder / "dataset" / "state.json").exists() else folder
    problems, pairs, fields = [], [], set()
    for _, record in read_records(source, problems):
        fields |= set(record)
        passages = [record["passage"]] if "passage" in record else [record.get("positive")]
        negatives = record.get("negatives") or []
        passages += ast.literal_eval(negatives) if isinstance(negatives, str) else list(negatives)
        pairs += [(record["query"], p) for p in passages if "query" in record and p]
        if len(pairs) >= limit:
            break
    if problems or not pairs:
        found = "; ".join(str(p) for p in problems) or f"records with fields {sorted(fields)}"
        raise ValueError(f"calibration={path!r}: expected (query, passage) records or a mined training set "
                         f"(query, positive, negatives); found {found}.")
    return pairs[:limit]
