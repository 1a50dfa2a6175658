"""Query generation speed: SmolLM2-135M (GGUF) through transformers (batched) and llama.cpp on the same passages.

    python bench/synth.py                      # 48 SciFact abstracts, the synth config's prompt
    python bench/synth.py --passages 96 --data ../shared/data/covidqa --batch-sizes 8,16,32

Each backend generates one query per passage with the prompt of ``configs/data_prep/scifact-synth.yaml`` (greedy,
``max_new_tokens`` 40) after one warm-up call. The table gives queries/s, prompt and completion tokens/s, the
share of outputs that parse into a query, and the ratio of each backend's queries/s to llama.cpp's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from common import ROOT, data_dir


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(data_dir() / "scifact"))
    parser.add_argument("--passages", type=int, default=48)
    parser.add_argument("--batch-sizes", default="16", help="transformers batch sizes, comma-separated")
    parser.add_argument("--config", default=str(ROOT / "configs" / "data_prep" / "scifact-synth.yaml"))
    return parser.parse_args(argv)


def measure(llm, prompts: list[str]) -> dict:
    from rerankforge.data_prep.synth_filters import parse_query

    llm.complete(prompts[:1])  # warm-up: first-call allocations are not generation speed
    start = time.perf_counter()
    out = []
    step = getattr(llm, "batch_size", 1)
    for i in range(0, len(prompts), step):
        out += llm.complete(prompts[i:i + step])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "queries_per_s": len(out) / seconds,
            "prompt_tokens_per_s": sum(c.prompt_tokens or 0 for c in out) / seconds,
            "completion_tokens_per_s": sum(c.completion_tokens or 0 for c in out) / seconds,
            "parsed": sum(parse_query(c.text)[0] is not None for c in out) / len(out)}


def main(argv=None) -> int:
    import dataclasses

    from rerankforge.core.config import load_config
    from rerankforge.data_prep.config import SynthConfig
    from rerankforge.data_prep.synth import build_prompt, sample_passages
    from rerankforge.models.llm import load_llm
    from rerankforge.retrieval.loaders import load_corpus

    args = parse_args(argv)
    cfg = load_config(SynthConfig, args.config, [f"data.path={args.data}", f"passages={args.passages}"])
    corpus = load_corpus(Path(args.data) / "corpus.jsonl", cfg.data.fields, [])
    prompts = [build_prompt(cfg, d, corpus[d], "") for d in sample_passages(corpus, cfg)]
    results = {}
    for size in [int(s) for s in args.batch_sizes.split(",")]:
        llm = load_llm(dataclasses.replace(cfg.generator, kind="transformers", batch_size=size))
        results[f"transformers, batch {size}"] = measure(llm, prompts)
        del llm
    if importlib.util.find_spec("llama_cpp") is not None:
        results["llama_cpp"] = measure(load_llm(dataclasses.replace(cfg.generator, kind="llama_cpp")), prompts)
    else:
        print("llama-cpp-python is not installed: its row is left out (pip install llama-cpp-python)")
    peer = results.get("llama_cpp")
    print("| backend | queries/s | prompt tok/s | completion tok/s | parsed | x llama.cpp |\n|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = f"{r['queries_per_s'] / peer['queries_per_s']:.2f}" if peer else "-"
        print(f"| {name} | {r['queries_per_s']:.2f} | {r['prompt_tokens_per_s']:.0f} | "
              f"{r['completion_tokens_per_s']:.0f} | {r['parsed']:.0%} | {ratio} |")
    print(f"\n{len(prompts)} passages from {args.data}; prompt and generator settings from {args.config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
