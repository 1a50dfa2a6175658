"""Load tokenizers and one-logit sequence-classification models (encoders, decoders, GGUF, LoRA adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rerankforge.models.resolve import resolve_model

HEAD_MODULES = ("classifier", "score", "head", "pooler")  # trained and saved alongside LoRA adapters


def load_tokenizer(name_or_path: str, gguf_file: Optional[str] = None):
    from transformers import AutoTokenizer

    path = resolve_model(name_or_path).path
    tokenizer = AutoTokenizer.from_pretrained(path, **({"gguf_file": gguf_file} if gguf_file else {}))
    if tokenizer.pad_token is None:  # decoders: pad with EOS; the model reads the last non-pad token
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_seq_cls(name_or_path: str, gguf_file: Optional[str] = None, tokenizer=None, **kwargs):
    """A model with one relevance logit; a bi-encoder or decoder gets a freshly initialised head."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_model(name_or_path).path
    if (Path(path) / "adapter_config.json").exists():
        from peft import AutoPeftModelForSequenceClassification

        return AutoPeftModelForSequenceClassification.from_pretrained(path, num_labels=1, **kwargs)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **extra, **kwargs)
    if tokenizer is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def head_modules(model) -> list[str]:
    """Names of head modules present in ``model`` (e.g. ``classifier``, ``pooler`` for BERT; ``score``)."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return [h for h in HEAD_MODULES if h in names]


def add_lora(model, r: int, alpha: int, dropout: float, target_modules: list[str]):
    """Wrap ``model`` with peft LoRA; every head module stays fully trainable and is saved with the adapter."""
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError as exc:
        raise ImportError("LoRA needs peft: pip install peft") from exc
    targets = target_modules[0] if target_modules == ["all-linear"] else list(target_modules)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=targets, modules_to_save=head_modules(model))
    return get_peft_model(model, config)
