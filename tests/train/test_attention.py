"""Training's attention: float32 where CPU bf16 training differentiates it, sdpa everywhere else."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import train_cfg
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from rerankforge.train.attention import FLOAT32_BACKWARD, _sdpa_float32_backward, set_attention

MODULE = SimpleNamespace(is_causal=False)


def qkv_and_mask() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 16, 8, generator=generator).to(torch.bfloat16) for _ in range(3))
    mask = torch.ones(2, 1, 16, 16, dtype=torch.bool)
    mask[1, :, :, 11:] = False  # the second sequence is padded after 11 tokens
    return q, k, v, mask


def test_with_gradients_the_attention_is_computed_in_float32_and_returned_in_the_input_dtype():
    q, k, v, mask = qkv_and_mask()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, _ = _sdpa_float32_backward(MODULE, q, k, v, mask)
    in_float32, _ = sdpa_attention_forward(MODULE, q.float(), k.float(), v.float(), mask)
    in_bf16, _ = sdpa_attention_forward(MODULE, q, k, v, mask)
    assert output.dtype == torch.bfloat16
    assert torch.equal(output, in_float32.to(torch.bfloat16))
    assert not torch.equal(output, in_bf16)  # the test would pass on plain sdpa otherwise


def test_without_gradients_it_is_plain_sdpa():
    q, k, v, mask = qkv_and_mask()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        output, _ = _sdpa_float32_backward(MODULE, q, k, v, mask)
    assert torch.equal(output, sdpa_attention_forward(MODULE, q, k, v, mask)[0])


def test_set_attention_auto_picks_float32_backward_only_for_cpu_bf16(tiny_cross_encoder):
    from rerankforge.models.loading import load_seq_cls

    model = load_seq_cls(tiny_cross_encoder)
    assert set_attention(model, "auto", cpu_bf16=False) == "sdpa"
    assert set_attention(model, "auto", cpu_bf16=True) == FLOAT32_BACKWARD
    assert set_attention(model, "eager", cpu_bf16=True) == "eager"


def test_the_model_trains_through_it_and_scores_as_with_sdpa(tiny_cross_encoder, monkeypatch):
    import rerankforge.train.attention as attention
    from rerankforge.models.loading import load_seq_cls

    calls = []
    original = attention._sdpa_float32_backward
    monkeypatch.setattr(attention, "_sdpa_float32_backward", lambda *a, **k: calls.append(1) or original(*a, **k))
    ids = torch.randint(5, 90, (4, 24), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[2:, 16:] = 0
    reference = load_seq_cls(tiny_cross_encoder).eval()  # eval: no dropout; gradients stay on
    ours = load_seq_cls(tiny_cross_encoder).eval()
    set_attention(ours, "auto", cpu_bf16=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = reference(input_ids=ids, attention_mask=mask).logits.float()
        logits = ours(input_ids=ids, attention_mask=mask).logits.float()
    assert len(calls) == 2  # once per layer
    logits.sum().backward()
    spread = float(expected.max() - expected.min())
    assert logits.view(-1).tolist() == pytest.approx(expected.view(-1).tolist(), abs=0.1 * spread)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ours.parameters())


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one precision per process; this test trains in another than the tests around it."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def test_bf16_training_on_cpu_saves_a_checkpoint_that_loads_with_transformers_defaults(
        mined, beir_dir, tmp_path, tiny_cross_encoder, fresh_accelerate_state, monkeypatch):
    from sentence_transformers import CrossEncoder

    import rerankforge.train.run as run

    used = []
    monkeypatch.setattr(run, "set_attention", lambda *args: used.append(set_attention(*args)) or used[-1])
    final = run.main(train_cfg(mined, beir_dir, tiny_cross_encoder, tmp_path / "run", "mixed_precision=bf16",
                               "data.dev=null"))
    assert used == [FLOAT32_BACKWARD]
    assert FLOAT32_BACKWARD not in (final / "config.json").read_text()
    scores = CrossEncoder(str(final), device="cpu").predict([("cat sat", "the cat sat"), ("cat sat", "dogs")])
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_a_model_that_cannot_switch_is_named_with_the_fix(tiny_cross_encoder, monkeypatch):
    from rerankforge.models.loading import load_seq_cls

    model = load_seq_cls(tiny_cross_encoder)
    monkeypatch.setattr(model, "set_attn_implementation", lambda name: None)  # transformers only warns
    assert set_attention(model, "auto", cpu_bf16=True) == "sdpa"  # auto falls back to the model's own
    with pytest.raises(ValueError, match="model.attn_implementation='eager': BertForSequenceClassification kept "
                                         "'sdpa' .* Set model.attn_implementation=auto"):
        set_attention(model, "eager", cpu_bf16=True)
