"""The model card (README.md) of every ``final/`` checkpoint, built with ``huggingface_hub.ModelCard``: Hub metadata
with a ``model-index`` of measured results, usage, calibration, fusion, data and mining, training, limitations.

Also the ``config_sentence_transformers.json`` (and the module files) that sentence-transformers' own
``CrossEncoder.save`` writes, so that ``CrossEncoder(folder)`` loads the checkpoint as a saved CrossEncoder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import yaml
from huggingface_hub import ModelCard, ModelCardData

from rerankforge.models.card_results import (
    HUB_DATASETS,
    LIMITATIONS_HEADING,
    RESULTS_HEADING,
    CardError,
    dev_results,
    hub_dataset,
    load_results,
    measured_limits,
    merge,
    own_results,
    report_results,
    results_markdown,
    save_results,
)

__all__ = ["HUB_DATASETS", "CardError", "add_eval_results", "hub_datasets", "load_card", "set_model_id",
           "write_model_card", "write_st_config"]

CALIBRATION_FILE = "calibration.json"  # written beside the weights by training (models/calibration.py)
SNIPPET_ID = re.compile(r'CrossEncoder\("[^"]*"\)')


def hub_datasets(data: dict) -> list[str]:
    """The Hub id of the training data when its folder name is a known data set, else the folder name."""
    name = hub_dataset(data.get("path") or data.get("corpus"))
    return [name] if name else []


def load_card(folder: Path) -> Optional[ModelCard]:
    """``folder/README.md`` as a ``ModelCard``; None when there is none.

    Raises:
        CardError: the README's metadata block does not parse (e.g. a malformed ``model-index``).
    """
    path = Path(folder) / "README.md"
    if not path.is_file():
        return None
    try:
        return ModelCard.load(path)
    except (ValueError, yaml.YAMLError) as exc:
        raise CardError(f"{path} has a metadata block that does not parse: {exc}. Fix the YAML between the `---` "
                        "lines, or delete the file and train again to rewrite it.") from exc


def _calibration_text(folder: Path) -> str:
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return ("Scores are uncalibrated: `CrossEncoder.predict` and rerankforge's `relevance_score` are the sigmoid "
                "of the logit, which orders passages but is not a probability of relevance, and a threshold on it "
                "means something different for every model. (Training fits a calibration when it has a dev split.)\n")
    fit = json.loads(path.read_text(encoding="utf-8"))
    ece = fit.get("ece", {})
    return (f"`{CALIBRATION_FILE}` holds a {fit.get('method', 'platt')} scale fitted on {fit.get('dev_pairs')} dev "
            f"query–passage pairs ({fit.get('dev_positives')} relevant): P(relevant) = sigmoid({fit['a']:.4f} × "
            f"logit + {fit['b']:.4f}). Expected calibration error on dev ({fit.get('bins', 10)} bins): "
            f"{ece.get('sigmoid', float('nan')):.4f} for the plain sigmoid, {ece.get('calibrated', float('nan')):.4f} "
            "calibrated. rerankforge's `Reranker`, `eval` and server apply it to a local copy of this folder, so their "
            "`relevance_score` estimates P(relevant) and a threshold (e.g. `generate.cutoff.min_probability`) "
            "means the same for every calibrated model. `CrossEncoder.predict` returns the plain sigmoid; apply "
            "the scale to its logits yourself:\n\n```python\nimport torch\n"
            "logits = model.predict(pairs, activation_fn=torch.nn.Identity())\n"
            f"p_relevant = torch.sigmoid({fit['a']:.6g} * torch.as_tensor(logits) + {fit['b']:.6g})\n```\n")


def _dev_reading(fusion: dict) -> str:
    tokens = fusion.get("max_passage_tokens")
    return f" (long passages read as windows, up to {tokens} tokens, and scored by the best)" if tokens else ""


def _fusion_text(fusion: Optional[dict]) -> str:
    if not fusion:
        return ("No fusion weight was fitted (no dev split). Its scores can still be fused with a first stage at "
                "a weight of your choosing.\n")
    first = fusion.get("first_stage", {})
    fitted = (f"the weight fitted on {fusion.get('dev_queries')} dev queries" if fusion.get("rule") != "tie_break"
              else f"a tie-break weight: only {fusion.get('open_queries')} of {fusion.get('dev_queries')} dev queries "
                   "left the first stage room to improve, too few to fit one")
    return (f"Fusion with its first stage ({first.get('method')}): `fusion.json` holds "
            f"{fitted}, {fusion['method']} with alpha "
            f"{fusion['alpha']:.2f} (1 = reranker alone, 0 = first stage alone). Dev nDCG@10"
            f"{_dev_reading(fusion)}: first stage "
            f"{fusion['first_stage_alone']:.4f}, reranker alone {fusion['reranker_alone']:.4f}, fused "
            f"{fusion['methods'][fusion['method']][fusion['metric']]:.4f}. `rerankforge eval` and the server's "
            "`/v1/query` apply it with `fusion: {method: auto}`; plain rerank calls return the reranker's own "
            "scores.\n")


def _data_name(data: dict) -> str:
    """The training data by its Hub id or folder name: never a local path."""
    return hub_dataset(data.get("path") or data.get("corpus")) or "the user's data"


def _provenance(cfg, mine_manifest: dict) -> str:
    """The data, mining and training sections: enough to rerun the recipe."""
    mine, counts = mine_manifest.get("config", {}), mine_manifest.get("counts", {})
    data = mine.get("data", {})
    first_stage = mine.get("first_stage", {})
    mining = {"first_stage": first_stage.get("method"),
              **{k: mine.get("mining", {}).get(k) for k in ("range_max", "relative_margin", "absolute_margin",
                                                            "num_negatives", "sampling_strategy")}}
    encoder = first_stage.get("encoder", {}).get("name_or_path")
    first = mine_manifest.get("first_stage") or {}
    chosen = (f"\n- First stage (the candidates it was trained to rerank): `{first.get('method')}`, because "
              f"{first['why']}." if first.get("why") else "")
    lora = (f"r={cfg.lora.r} alpha={cfg.lora.alpha}, exported as {cfg.lora.export}" if cfg.lora.enabled
            else "no (full fine-tuning)")
    return f"""## Data and mining
- Training data: {_data_name(data)} (split `{data.get('split')}`),
  {counts.get('queries_mined', '?')} queries, {counts.get('rows', '?')} query–positive rows.
- Hard negatives mined with `{encoder}`: {', '.join(f'{k}={v}' for k, v in mining.items() if v is not None)}.{chosen}

## Training
- Loss `{cfg.loss.name}`, groups of {cfg.data.group_size} (1 positive + {cfg.data.group_size - 1} negatives),
  {cfg.batch_size} groups per step × {cfg.gradient_accumulation_steps} accumulation, lr {cfg.optim.lr},
  {cfg.optim.scheduler} schedule with {cfg.optim.warmup_ratio:.0%} warmup, max_length {cfg.model.max_length}, seed {cfg.seed}.
- LoRA: {lora}.
"""


def _limitations(rows: list) -> str:
    measured = measured_limits(rows)
    figures = ("\n".join(measured) if measured else "- No figure against a first stage is recorded yet.")
    below = any(" below its first stage" in line for line in measured)
    advice = ("Where it is below its first stage, use it fused: pass the retriever's scores (`Reranker.rerank(..., "
              "first_stage_scores=...)`, or `first_stage_scores` in a request to `rerankforge serve`), which applies "
              "`fusion.json`, or rerank with another first stage.\n" if below else "")
    return f"""{LIMITATIONS_HEADING}
Rerank the top candidates of a first-stage retriever over the same kind of text it was trained on. Measured with
nDCG@10, the model alone (what `CrossEncoder`, TEI and the Cohere route return without first-stage scores):

{figures}

{advice}It was trained on labelled pairs from one domain (counted under "Data and mining"): expect it to be worse than
a general reranker outside that domain, and check it on your own queries before use.
"""


def _body(folder: Path, cfg, mine_manifest: dict, rows: list, fusion: Optional[dict], model_id: str) -> str:
    return f"""
# Reranker fine-tuned with rerankforge

A cross-encoder (one relevance logit per query–passage pair) fine-tuned from `{cfg.model.name_or_path}` on
{_data_name(mine_manifest.get("config", {}).get("data", {}))} with the `{cfg.loss.name}` loss. It reorders the top
candidates of a first-stage retriever.

```python
from sentence_transformers import CrossEncoder

model = CrossEncoder("{model_id}")
pairs = [("query", "passage one"), ("query", "passage two")]
scores = model.predict(pairs)  # sigmoid of the logit
ranked = model.rank("query", ["passage one", "passage two"])
```

{RESULTS_HEADING}
{results_markdown(rows)}
## Score calibration
{_calibration_text(folder)}
## Fusion with the first stage
{_fusion_text(fusion)}
{_provenance(cfg, mine_manifest)}
{_limitations(rows)}"""


def _model_name(cfg, mine_manifest: dict) -> str:
    data = mine_manifest.get("config", {}).get("data", {})
    domain = Path(data.get("path") or data.get("corpus") or cfg.data.train).name
    return f"{Path(cfg.model.name_or_path).name}-{domain}-reranker"


def write_model_card(folder: Path, cfg, mine_manifest: dict, metrics: list[dict], fusion: Optional[dict] = None,
                     *, repo_id: Optional[str] = None, eval_reports: tuple = ()) -> ModelCard:
    """Write ``folder/README.md`` and return it as a ``ModelCard``.

    The metadata holds ``base_model``, ``datasets``, ``license`` (``cfg.license``), tags and a ``model-index``
    with this model's own figures: the kept checkpoint's dev figures from ``metrics`` (the ``metrics.jsonl``
    records), plus those of each ``rerankforge eval`` report in ``eval_reports``. The first stage's and the fused
    figures (``fusion``) are in the text's tables and in ``eval_results.json``. The usage snippet loads ``repo_id`` when
    given, else ``folder`` as a local path. ``calibration.json`` beside the weights, when present, is described.

    Raises:
        CardError: an eval report that cannot be read or has no reranker that is ``folder``.
    """
    folder = Path(folder)
    mine = mine_manifest.get("config", {})
    rows = dev_results(cfg, mine_manifest, metrics, fusion)
    for report in eval_reports:
        rows = merge(rows, report_results(Path(report), folder))
    data = ModelCardData(base_model=cfg.model.name_or_path, library_name="sentence-transformers",
                         pipeline_tag="text-ranking", tags=["cross-encoder", "reranker", "rerankforge"],
                         license=cfg.license, datasets=hub_datasets(mine.get("data", {})),
                         model_name=repo_id.split("/")[-1] if repo_id else _model_name(cfg, mine_manifest),
                         eval_results=own_results(rows) or None)
    body = _body(folder, cfg, mine_manifest, rows, fusion, repo_id or str(folder))
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
    folder.mkdir(parents=True, exist_ok=True)
    card.save(folder / "README.md")
    save_results(folder, rows)
    return card


def _replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with the section under ``heading`` replaced by ``section`` (appended when it is missing)."""
    start = text.find(heading + "\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + len(heading))
    return text[:start] + section + ("\n" + text[end + 1:] if end >= 0 else "")


def add_eval_results(checkpoint: Path, report_path: Path, *, card_folder: Optional[Path] = None,
                     reranker: Optional[str] = None) -> ModelCard:
    """Merge a ``rerankforge eval`` report's figures of ``checkpoint`` (first stage, reranked, fused; every
    metric, on the report's data set and split) into ``eval_results.json``, the card's results tables and measured
    limitations, and (this model's own figures) its ``model-index``.

    The card is ``card_folder/README.md`` (default: the checkpoint's own); figures already there for the same
    data set and split are replaced, so adding a report twice changes nothing. ``reranker`` picks the report's
    reranker by name; by default it is the one whose ``model`` is ``checkpoint``.

    Raises:
        CardError: the report cannot be read or does not hold ``checkpoint``, or the card does not parse.
    """
    folder = Path(card_folder or checkpoint)
    card = load_card(folder) or ModelCard("---\n{}\n---\n")
    rows = merge(load_results(folder, card.data.eval_results or []),
                 report_results(Path(report_path), Path(checkpoint), reranker))
    card.data.eval_results = own_results(rows)
    card.data.model_name = card.data.model_name or Path(checkpoint).resolve().name
    card.text = _replace_section(card.text, RESULTS_HEADING, f"{RESULTS_HEADING}\n{results_markdown(rows)}")
    if LIMITATIONS_HEADING + "\n" in card.text:
        card.text = _replace_section(card.text, LIMITATIONS_HEADING, _limitations(rows))
    card.save(folder / "README.md")
    save_results(folder, rows)
    return card


def set_model_id(card: ModelCard, model_id: str) -> ModelCard:
    """Point the card's usage snippet (``CrossEncoder("...")``) and its model-index name at ``model_id``."""
    card.text = SNIPPET_ID.sub(f'CrossEncoder("{model_id}")', card.text)
    if card.data.eval_results:
        card.data.model_name = model_id.split("/")[-1]
    return card


def _st_versions() -> dict:
    # sentence-transformers imports torch (slow); only this path needs it
    import sentence_transformers
    import torch
    import transformers

    return {"sentence_transformers": sentence_transformers.__version__, "transformers": transformers.__version__,
            "pytorch": torch.__version__}


def write_st_config(folder: Path) -> list[Path]:
    """Write what sentence-transformers' ``CrossEncoder.save`` writes beside the weights of a one-logit
    cross-encoder: ``config_sentence_transformers.json`` (model type, versions, sigmoid activation) and, with
    sentence-transformers 6 or later, ``modules.json`` and ``sentence_bert_config.json`` (one Transformer module
    in the root, sequence classification), so ``CrossEncoder(folder)`` loads it as a saved CrossEncoder.

    Returns the files written; none for a LoRA adapter folder, which loads through peft, not as a CrossEncoder.
    """
    folder = Path(folder)
    if (folder / "adapter_config.json").exists():
        return []
    files = {"config_sentence_transformers.json": {
        "__version__": _st_versions(), "activation_fn": "torch.nn.modules.activation.Sigmoid",
        "default_prompt_name": None, "model_type": "CrossEncoder", "prompts": {}}}
    try:
        # sentence-transformers imports torch (slow); only this path needs it
        from sentence_transformers.base.modules.transformer import Transformer
    except ImportError:  # sentence-transformers 5 loads a cross-encoder from config.json alone
        Transformer = None
    if Transformer is not None:
        files["modules.json"] = [{"idx": 0, "name": "0", "path": "",
                                  "type": f"{Transformer.__module__}.{Transformer.__qualname__}"}]
        files["sentence_bert_config.json"] = {
            "transformer_task": "sequence-classification",
            "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
            "module_output_name": "scores"}
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2, sort_keys=name != "sentence_bert_config.json") + "\n",
                                   encoding="utf-8")
    return [folder / name for name in files]
