"""Dev evaluation during training: rerank each dev query's first-stage top-k, report nDCG@10 and MRR@10.

The first stage is the one the training data was mined with (its encoder and index settings are read from
the mining manifest), and its embeddings come from the same cache. Scores are computed on every process and
gathered with ``gather_for_metrics``, so 2 processes report the same numbers as 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rerankforge.eval.metrics import evaluate_run

METRICS = ("ndcg@10", "mrr@10")


@dataclass
class DevSet:
    """``pairs[i] = (query_id, doc_id, query, passage)``; ``first_stage`` is the run being reranked."""

    qrels: dict[str, dict[str, int]]
    first_stage: dict[str, dict[str, float]]
    pairs: list[tuple[str, str, str, str]]


def build_dev_set(folder: str, split: str, depth: int, max_queries: int | None, mine_config: dict) -> DevSet:
    """First-stage top-``depth`` of the ``split`` queries of the BEIR ``folder``, with the mining encoder."""
    from rerankforge.data_prep.candidates import dense_candidates
    from rerankforge.data_prep.config import MineConfig
    from rerankforge.data_prep.encode import doc_text, load_encoder
    from rerankforge.data_prep.loaders import load_corpus, load_qrels, load_queries
    from rerankforge.data_prep.mine import resolve_cache_dir
    from rerankforge.data_prep.problems import DataError
    from rerankforge.utils.config import from_dict

    mine_cfg = from_dict(MineConfig, mine_config)
    problems: list = []
    corpus = load_corpus(Path(folder) / "corpus.jsonl", mine_cfg.data.fields, problems)
    queries = load_queries(Path(folder) / "queries.jsonl", mine_cfg.data.fields, problems)
    qrels = load_qrels(Path(folder) / "qrels" / f"{split}.tsv", mine_cfg.data.fields, problems)
    if problems:
        raise DataError(problems)
    query_ids = sorted(q for q in qrels if q in queries)[:max_queries]
    doc_ids = sorted(corpus)
    doc_texts = [doc_text(corpus[d]) for d in doc_ids]
    cands = dense_candidates(mine_cfg, load_encoder(mine_cfg.encoder), doc_texts, [queries[q] for q in query_ids],
                             depth, resolve_cache_dir(mine_cfg))
    first_stage, pairs = {}, []
    for qi, query_id in enumerate(query_ids):
        first_stage[query_id] = {doc_ids[r]: float(s) for r, s in zip(cands.rows[qi], cands.scores[qi])}
        pairs += [(query_id, doc_ids[r], queries[query_id], doc_texts[r]) for r in cands.rows[qi]]
    return DevSet({q: qrels[q] for q in query_ids}, first_stage, pairs)


def dev_loader(dev: DevSet, collator, batch_size: int) -> torch.utils.data.DataLoader:
    """Batches of ``(pair indices, tokenized pairs)``, longest passages first."""
    order = sorted(range(len(dev.pairs)), key=lambda i: -len(dev.pairs[i][3]))

    def collate(indices):
        batch = collator.pairs([dev.pairs[i][2] for i in indices], [dev.pairs[i][3] for i in indices])
        return torch.tensor(indices), dict(batch)

    return torch.utils.data.DataLoader(order, batch_size=batch_size, collate_fn=collate)


@torch.no_grad()
def evaluate(model, loader, dev: DevSet, accelerator) -> dict[str, float]:
    """Rerank the dev first stage with ``model``; metrics of the reranked and the first-stage runs."""
    model.eval()
    indices, scores = [], []
    for batch_indices, batch in tqdm(loader, desc="Dev reranking", leave=False,
                                     disable=not accelerator.is_main_process):
        logits = model(**batch).logits.view(-1).float()
        gathered_indices, gathered_scores = accelerator.gather_for_metrics((batch_indices, logits))
        indices.append(gathered_indices.cpu())
        scores.append(gathered_scores.cpu())
    model.train()
    reranked: dict[str, dict[str, float]] = {q: {} for q in dev.qrels}
    for i, s in zip(torch.cat(indices).tolist(), torch.cat(scores).tolist()):
        query_id, doc_id = dev.pairs[i][:2]
        reranked[query_id][doc_id] = s
    metrics = {f"dev/{k}": v for k, v in evaluate_run(dev.qrels, reranked, METRICS).items()}
    metrics.update({f"dev/first_stage_{k}": v for k, v in evaluate_run(dev.qrels, dev.first_stage, METRICS).items()})
    return metrics
