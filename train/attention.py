"""The attention a training run uses: ``model.attn_implementation``.

``auto`` keeps the model's own, except in bf16 training on a CPU of a model that runs ``sdpa``. There PyTorch's
flash-attention kernel computes its backward ~1.8x as fast in float32 as in bfloat16, while its forward is
faster in bfloat16 (``python bench/attention.py``). So under CPU autocast, the attention of a forward that will be
differentiated runs in float32; dev evaluation and everything else run as ``sdpa`` does. Float32 attention is also
the more precise of the two, so the speed costs no accuracy.
"""

from __future__ import annotations

import torch

FLOAT32_BACKWARD = "rerankforge_sdpa_float32_backward"


def _sdpa_float32_backward(module, query, key, value, attention_mask, **kwargs):
    """``sdpa`` attention; in float32 when it will be differentiated on a CPU in a lower precision."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not (torch.is_grad_enabled() and query.device.type == "cpu" and query.dtype != torch.float32):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    def upcast(x):  # masks and position biases too: SDPA wants one floating dtype
        return x.float() if torch.is_tensor(x) and x.is_floating_point() else x

    with torch.autocast("cpu", enabled=False):
        output, weights = sdpa_attention_forward(module, upcast(query), upcast(key), upcast(value),
                                                 upcast(attention_mask), **{k: upcast(v) for k, v in kwargs.items()})
    return output.to(query.dtype), weights


def _register() -> bool:
    """Make :data:`FLOAT32_BACKWARD` a name ``set_attn_implementation`` accepts, with sdpa's masks; False where this
    transformers is too old to have an attention registry."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(FLOAT32_BACKWARD, _sdpa_float32_backward)
    AttentionMaskInterface.register(FLOAT32_BACKWARD, sdpa_mask)
    return True


def set_attention(model, attn_implementation: str, cpu_bf16: bool) -> str:
    """Set ``model``'s attention for training and return the name it runs.

    ``attn_implementation``: ``auto`` (see the module docstring; ``cpu_bf16`` says whether training runs in bf16
    on a CPU) or any name transformers takes (``sdpa``, ``eager``, ``flash_attention_2``, ...). A checkpoint saved
    from the model does not record it: ``config.json`` loads anywhere with transformers' default.

    Raises:
        ValueError: the model cannot switch to the name asked for.
    """
    current = getattr(model.config, "_attn_implementation", None)
    asked = attn_implementation
    if asked == "auto":
        if not (cpu_bf16 and current == "sdpa" and hasattr(model, "set_attn_implementation") and _register()):
            return current
        attn_implementation = FLOAT32_BACKWARD
    if not hasattr(model, "set_attn_implementation"):
        raise ValueError(f"model.attn_implementation={asked!r} needs a transformers that can switch "
                         f"{type(model).__name__}'s attention (it runs {current!r}): `pip install -U transformers`, "
                         "or set model.attn_implementation=auto.")
    model.set_attn_implementation(attn_implementation)
    running = model.config._attn_implementation
    if running != attn_implementation and asked != "auto":  # transformers only warns when a model cannot switch
        raise ValueError(f"model.attn_implementation={asked!r}: {type(model).__name__} kept {running!r} (it cannot "
                         "switch attention after loading). Set model.attn_implementation=auto.")
    return running
