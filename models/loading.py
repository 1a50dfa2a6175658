"""Load tokenizers and one-logit sequence-classification models (encoders, decoders, GGUF, LoRA adapters)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Optional

from rerankforge.core.extras import require
from rerankforge.models.resolve import resolve_model

HEAD_MODULES = ("classifier", "score", "head", "pooler")  # trained and saved alongside LoRA adapters


def bf16_is_fast(device) -> bool:
    """Whether bfloat16 pays off on ``device``: a CUDA GPU that supports it, or a CPU with native bfloat16 math:
    AMX tiles (Xeon Sapphire Rapids and later) or AVX512-BF16 (AMD Zen 4 and later, Xeon Cooper Lake). There
    bfloat16 autocast trains ~1.6-2x and scores ~2-3x faster than float32 (docs/results.md). On other CPUs
    bfloat16 is emulated and slower than float32, so ``auto`` precision keeps float32 there."""
    # torch is slow to import; only this path needs it
    import torch

    device = torch.device(device)
    if device.type == "cuda":  # native bf16 (Ampere and later); emulated bf16 on older GPUs is slow
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.x; absent means unknown
    return bool(amx and amx()) or "avx512_bf16" in cpu_flags()


def cpu_info() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (``model name``, ``flags``, ...); empty where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    block = text.split("\n\n", 1)[0]
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in block.splitlines())}


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere): torch exposes AMX but not AVX512-BF16."""
    return set(cpu_info().get("flags", "").split())


SPEED_FLAGS = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")  # what decides CPU speed here


def hardware() -> dict:
    """What a timing was measured on: the CPU model, its cores and the flags that decide bfloat16 and int8 speed,
    the GPU (None without one) and the torch version."""
    import torch  # already loaded wherever a timing is taken

    flags = cpu_flags()
    return {"cpu": cpu_info().get("model name") or platform.processor() or "unknown", "cores": os.cpu_count(),
            "cpu_flags": [f for f in SPEED_FLAGS if f in flags],
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "torch": torch.__version__}


def usable_positions(config) -> Optional[int]:
    """Tokens the model can read at once by its absolute position embeddings; None when they do not bound it
    (relative positions, as DeBERTa-v2/v3's ``position_biased_input=False``). RoBERTa-style models offset their
    positions by ``pad_token_id + 1``, so 514 positions read 512 tokens."""
    positions = getattr(config, "max_position_embeddings", None)
    if not positions or getattr(config, "position_biased_input", True) is False:
        return None
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "longformer"):
        return positions - (getattr(config, "pad_token_id", 1) or 1) - 1
    return positions


def load_tokenizer(name_or_path: str, gguf_file: Optional[str] = None):
    # transformers imports torch (slow); only this path needs it
    from transformers import AutoTokenizer

    path = resolve_model(name_or_path).path
    tokenizer = AutoTokenizer.from_pretrained(path, **({"gguf_file": gguf_file} if gguf_file else {}))
    if tokenizer.pad_token is None:  # decoders: pad with EOS; the model reads the last non-pad token
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_seq_cls(name_or_path: str, gguf_file: Optional[str] = None, tokenizer=None, **kwargs):
    """A model with one relevance logit; a bi-encoder or decoder gets a freshly initialised head."""
    # transformers imports torch (slow); only this path needs it
    from transformers import AutoModelForSequenceClassification

    path = resolve_model(name_or_path).path
    adapter_config = Path(path) / "adapter_config.json"
    if adapter_config.exists():  # a LoRA adapter: load its base (resolved like any reference), then the adapter
        # peft imports torch (slow); only LoRA needs it
        from peft import PeftModel

        base = json.loads(adapter_config.read_text())["base_model_name_or_path"]
        return PeftModel.from_pretrained(load_seq_cls(base, gguf_file, tokenizer, **kwargs), path)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **extra, **kwargs)
    if gguf_file:
        _as_plain_weights(model)
    if tokenizer is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def _as_plain_weights(model) -> None:
    """A GGUF model loaded dequantized is plain torch weights; drop the quantizer mark so it trains and saves
    as an ordinary checkpoint.

    Raises:
        ValueError: the weights were kept packed (a GGUF kernel is installed), which cannot be fine-tuned.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    packed = getattr(quantizer, "supported", False) and not getattr(quantizer.quantization_config, "dequantize", True)
    if packed:
        raise ValueError("The GGUF weights were loaded packed; fine-tuning needs them dequantized. Uninstall the "
                         "`kernels` package or convert the GGUF file to safetensors first.")
    model.hf_quantizer = None
    for config in (model.config, getattr(model.config, "text_config", None)):
        if config is not None and hasattr(config, "quantization_config"):
            del config.quantization_config


def head_modules(model) -> list[str]:
    """Names of head modules present in ``model`` (e.g. ``classifier``, ``pooler`` for BERT; ``score``)."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return [h for h in HEAD_MODULES if h in names]


def add_lora(model, r: int, alpha: int, dropout: float, target_modules: list[str]):
    """Wrap ``model`` with peft LoRA; every head module stays fully trainable and is saved with the adapter."""
    peft = require("peft", "LoRA")
    LoraConfig, TaskType, get_peft_model = peft.LoraConfig, peft.TaskType, peft.get_peft_model
    targets = target_modules[0] if target_modules == ["all-linear"] else list(target_modules)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=targets, modules_to_save=head_modules(model))
    return get_peft_model(model, config)
