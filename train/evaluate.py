"""Dev evaluation during training: rerank each dev query's first-stage top-k, report nDCG@10 and MRR@10.

The dev queries are the split mining held out, with the candidates of the first stage the training data was
mined with (or, for a BEIR folder, that same first stage run again). Scores are computed on every process and
gathered with ``gather_for_metrics``, so 2 processes report the same numbers as 1.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rerankforge.core.config import from_dict
from rerankforge.core.dev_split import DEV_FILE, DevSet, dev_records, dev_set, read_dev
from rerankforge.core.io import resolve_cache_dir
from rerankforge.core.metrics import evaluate_run
from rerankforge.core.problems import DataError
from rerankforge.core.text import doc_text
from rerankforge.data_prep.config import MineConfig
from rerankforge.retrieval.first_stage import FirstStage
from rerankforge.retrieval.loaders import beir_file, load_corpus, load_qrels, load_queries, qrels_name

METRICS = ("ndcg@10", "mrr@10")
logger = logging.getLogger(__name__)


def build_dev_set(train_folder: str, dev: str, split: str, depth: int, max_queries: int | None,
                  mine_config: dict) -> DevSet | None:
    """The dev set: ``dev="mined"`` reads the split ``rerankforge mine`` held out (``<train_folder>/dev.jsonl``;
    None, with a warning, when mining held none out); a BEIR folder has its ``split`` queries retrieved with the
    mining first stage, top ``depth``."""
    if dev == "mined":
        path = Path(train_folder) / DEV_FILE
        if not path.exists():
            logger.warning("No dev split in %s (mined with data.dev_fraction=0, or too few queries): training "
                           "keeps the last step and fits no fusion weight. Mine with data.dev_fraction=0.1 or set "
                           "data.dev to a BEIR folder.", train_folder)
            return None
        return read_dev(path, depth, max_queries)
    mine_cfg = from_dict(MineConfig, mine_config)
    problems: list = []
    corpus = load_corpus(beir_file(dev, None, "corpus.jsonl"), mine_cfg.data.fields, problems)
    queries = load_queries(beir_file(dev, None, "queries.jsonl"), mine_cfg.data.fields, problems)
    qrels = load_qrels(beir_file(dev, None, qrels_name(split)), mine_cfg.data.fields, problems)
    if problems:
        raise DataError(problems)
    query_ids = sorted(q for q in qrels if q in queries)[:max_queries]
    doc_ids = sorted(corpus)
    doc_texts = [doc_text(corpus[d]) for d in doc_ids]
    stage = FirstStage(mine_cfg.first_stage, doc_texts, resolve_cache_dir(mine_cfg.cache_dir), doc_ids=doc_ids)
    return dev_set(dev_records(stage, query_ids, queries, qrels, depth, doc_texts))


def dev_loader(dev: DevSet, collator, batch_size: int) -> torch.utils.data.DataLoader:
    """Batches of ``(pair indices, tokenized pairs)``, longest passages first."""
    order = sorted(range(len(dev.pairs)), key=lambda i: -len(dev.pairs[i][3]))

    def collate(indices):
        batch = collator.pairs([dev.pairs[i][2] for i in indices], [dev.pairs[i][3] for i in indices])
        return torch.tensor(indices), dict(batch)

    return torch.utils.data.DataLoader(order, batch_size=batch_size, collate_fn=collate)


@torch.no_grad()
def evaluate(model, loader, dev: DevSet, accelerator) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Rerank the dev first stage with ``model``: metrics of the reranked and first-stage runs, and the
    reranked run (raw logits) itself."""
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
    return metrics, reranked


def score_dev_windows(checkpoint: Path, dev: DevSet, max_passage_tokens: int, max_query_length: int, device,
                      dtype, cut_run: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """The dev run (raw logits) of a saved checkpoint with every passage read as eval reads it with
    ``rerankers.<name>.max_passage_tokens``: up to that many tokens, as windows of the checkpoint's
    ``max_length``, scored by its best window. The fusion weight and calibration are fitted on this run, so they
    match the scores eval and serving fuse.

    ``cut_run``: the checkpoint's dev run with passages cut, as selection scored it, in the same precision. When
    ``max_passage_tokens`` is at least the checkpoint's ``max_length``, a passage's first window is that cut input,
    so only the windows after it are scored and the cut score stands for the first.
    """
    import dataclasses

    from rerankforge.models.export import rerank_dev
    from rerankforge.models.reranker import Reranker

    reranker = Reranker(str(checkpoint), device=str(device), dtype=dtype, max_passage_tokens=max_passage_tokens,
                        max_query_length=max_query_length)
    logger.info("Scoring the %d dev pairs again with passages read as windows (up to %d tokens) for the fusion "
                "weight and calibration.", len(dev.pairs), max_passage_tokens)
    if cut_run is None or max_passage_tokens < reranker.max_length:  # else the first window is shorter than a cut
        return rerank_dev(reranker, dev)
    later = rerank_dev(reranker, dev, dataclasses.replace(reranker.limits, skip_first_window=True))
    return {q: {d: max(cut_run[q][d], s) for d, s in docs.items()} for q, docs in later.items()}
