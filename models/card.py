"""The model card (README.md) written into every ``final/`` checkpoint: what it is, how it was made, how it did."""

from __future__ import annotations

from pathlib import Path

import yaml


# Local data folder names -> Hub dataset ids, for the card's `datasets` metadata.
HUB_DATASETS = {"scifact": "BeIR/scifact", "nfcorpus": "BeIR/nfcorpus", "fiqa": "BeIR/fiqa",
                "trec-covid": "BeIR/trec-covid", "arguana": "BeIR/arguana", "scidocs": "BeIR/scidocs",
                "covidqa": "deepset/covid_qa_deepset"}


def hub_datasets(data: dict) -> list[str]:
    """The Hub id of the training data when its folder name is a known data set, else the folder name."""
    name = Path(data.get("path") or data.get("corpus") or "").name.lower()
    return [HUB_DATASETS.get(name, name)] if name else []


def _metrics_table(metrics: list[dict]) -> str:
    evals = [m for m in metrics if "dev/ndcg@10" in m]
    if not evals:
        return "No dev evaluation was run (mine with `data.dev_fraction` > 0, or set `data.dev`).\n"
    best = max(evals, key=lambda m: m["dev/ndcg@10"])
    rows = ["| run | nDCG@10 | MRR@10 |", "|---|---|---|",
            f"| first stage (dev) | {best['dev/first_stage_ndcg@10']:.4f} | {best['dev/first_stage_mrr@10']:.4f} |",
            f"| this reranker, step {best['step']} (dev) | {best['dev/ndcg@10']:.4f} | {best['dev/mrr@10']:.4f} |"]
    return "\n".join(rows) + "\n"


def _fusion_text(fusion: dict | None) -> str:
    if not fusion:
        return ("No fusion weight was fitted (no dev split). Its scores can still be fused with a first stage at "
                "a weight of your choosing.\n")
    first = fusion.get("first_stage", {})
    return (f"Fused with its first stage ({first.get('method')}), this reranker ranks best: `fusion.json` holds "
            f"the weight fitted on {fusion.get('dev_queries')} dev queries, {fusion['method']} with alpha "
            f"{fusion['alpha']:.2f} (1 = reranker alone, 0 = first stage alone). Dev nDCG@10: first stage "
            f"{fusion['first_stage_alone']:.4f}, reranker alone {fusion['reranker_alone']:.4f}, fused "
            f"{fusion['methods'][fusion['method']][fusion['metric']]:.4f}. `rerankforge eval` and the server's "
            "`/v1/query` apply it with `fusion: {method: auto}`; plain rerank calls return the reranker's own "
            "scores.\n")


def write_model_card(folder: Path, cfg, mine_manifest: dict, metrics: list[dict], fusion: dict | None = None) -> None:
    """Write ``folder/README.md`` with Hub metadata, data and mining settings, training config and dev metrics."""
    mine = mine_manifest.get("config", {})
    encoder = mine.get("encoder", {}).get("name_or_path")
    meta = {"base_model": cfg.model.name_or_path, "library_name": "sentence-transformers",
            "pipeline_tag": "text-ranking", "tags": ["cross-encoder", "reranker", "rerankforge"],
            "license": "apache-2.0", "datasets": hub_datasets(mine.get("data", {}))}
    mining = {k: mine.get("mining", {}).get(k) for k in ("candidates", "range_max", "relative_margin",
                                                          "absolute_margin", "num_negatives", "sampling_strategy")}
    body = f"""# Reranker fine-tuned with rerankforge

A cross-encoder (one relevance logit per query–passage pair) fine-tuned from `{cfg.model.name_or_path}` on
`{cfg.data.train}` with the `{cfg.loss.name}` loss.

```python
from sentence_transformers import CrossEncoder
model = CrossEncoder("{folder.name}")
scores = model.predict([("query", "passage")])
```

## Data and mining
- Training data: {mine.get('data', {}).get('path') or mine.get('data', {}).get('corpus')} (split `{mine.get('data', {}).get('split')}`),
  {mine_manifest.get('counts', {}).get('queries_mined', '?')} queries, {mine_manifest.get('counts', {}).get('rows', '?')} query–positive rows.
- Hard negatives mined with `{encoder}`: {', '.join(f'{k}={v}' for k, v in mining.items() if v is not None)}.

## Training
- Loss `{cfg.loss.name}`, groups of {cfg.data.group_size} (1 positive + {cfg.data.group_size - 1} negatives),
  {cfg.batch_size} groups per step × {cfg.gradient_accumulation_steps} accumulation, lr {cfg.optim.lr},
  {cfg.optim.scheduler} schedule with {cfg.optim.warmup_ratio:.0%} warmup, max_length {cfg.model.max_length}, seed {cfg.seed}.
- LoRA: {'r=%d alpha=%d, exported as %s' % (cfg.lora.r, cfg.lora.alpha, cfg.lora.export) if cfg.lora.enabled else 'no (full fine-tuning)'}.

## Dev metrics
{_metrics_table(metrics)}
## Fusion with the first stage
{_fusion_text(fusion)}
## Intended use and limitations
Rerank the top candidates of a first-stage retriever over the same kind of text it was trained on. It was
trained on {mine_manifest.get('counts', {}).get('rows', 'a few hundred')} labelled pairs from one domain: expect
it to be worse than a general reranker outside that domain, and check it on your own queries before use. Scores
are relative (sigmoid of a logit), not calibrated probabilities.
"""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n{body}", encoding="utf-8")
