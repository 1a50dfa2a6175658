"""``rerankforge push --model runs/x/final --repo-id user/name [--eval-report PATH] [--private] [--dry-run]``

Stages the folder that would be uploaded (LoRA adapters as they are, or merged), completes the model card's
Hub metadata (``huggingface_hub.ModelCard``), adds the figures of a ``rerankforge eval`` report to its
``model-index`` when given one, points its usage snippet at the repo id, and checks that the card records at
least one result and that the folder loads with sentence-transformers' CrossEncoder,
AutoModelForSequenceClassification and ``transformers.pipeline``. ``--dry-run`` stops there; otherwise the
folder is uploaded with ``huggingface_hub`` (create the repo, then upload the folder).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from huggingface_hub import HfApi, ModelCard, get_token

from rerankforge.core.errors import InputError
from rerankforge.models.card import CardError, add_eval_results, load_card, set_model_id, write_st_config
from rerankforge.models.loading import load_seq_cls, load_tokenizer

REQUIRED_METADATA = ("base_model", "datasets", "library_name", "pipeline_tag", "license")
NO_RESULTS = ("README.md has no model-index with evaluation results, so the card does not say how the model does. "
              "Train with a dev split (data.dev=mined after mining with data.dev_fraction > 0, or data.dev=<BEIR "
              "folder>) so the card records dev results, or evaluate this checkpoint with `rerankforge eval` and pass "
              "its report: --eval-report runs/.../eval/report.json.")


class PushError(InputError, RuntimeError):
    """The folder is not fit to publish, or the upload could not happen; nothing was uploaded."""


@dataclass
class PushConfig:
    model: Optional[str] = None  # a checkpoint folder (final/ of a training run)
    repo_id: Optional[str] = None  # user/name on the Hub
    private: bool = False  # create the Hub repo private (a repo that exists keeps its visibility)
    dry_run: bool = False  # stage and validate the folder, upload nothing (no repo_id or token needed)
    out: Optional[str] = None  # where the staged folder goes (default: <model>-hub next to the model)
    # LoRA adapter checkpoints: merged uploads a plain model with the adapter folded in; as_is and adapter, the adapter
    lora_export: Literal["as_is", "adapter", "merged"] = "as_is"
    datasets: list[str] = field(default_factory=list)  # Hub dataset ids; default: from the training data path
    license: Optional[str] = None  # default: the card's (train config `license`), else apache-2.0
    eval_report: Optional[str] = None  # a `rerankforge eval` report.json whose figures of this model join the card
    commit_message: str = "Upload reranker trained with rerankforge"  # the upload's commit message on the Hub


def _copy(source: Path, out: Path, cfg: PushConfig, is_adapter: bool) -> None:
    """The checkpoint's files in ``out``: as they are, or (LoRA adapter, ``lora_export=merged``) merged."""
    if is_adapter and cfg.lora_export == "merged":
        tokenizer = load_tokenizer(str(source))
        load_seq_cls(str(source), tokenizer=tokenizer).merge_and_unload().save_pretrained(out)
        tokenizer.save_pretrained(out)
        for name in ("README.md", "fusion.json", "calibration.json"):
            if (source / name).exists():
                shutil.copy(source / name, out / name)
    else:
        shutil.copytree(source, out, ignore=shutil.ignore_patterns(".*", "__pycache__"))


def stage(cfg: PushConfig) -> Path:
    """Write the folder to upload and return it; the model folder itself is never changed.

    The staged card gets the Hub metadata (library, pipeline tag, license, datasets), the figures of
    ``cfg.eval_report`` in its model-index, and ``cfg.repo_id`` in its usage snippet.
    """
    source = Path(cfg.model).expanduser()
    if not source.is_dir():
        raise PushError(f"--model {cfg.model} is not a folder. Pass a checkpoint folder such as runs/train/x/final.")
    out = Path(cfg.out).expanduser() if cfg.out else source.with_name(source.name + "-hub")
    if out.resolve() == source.resolve():
        raise PushError(f"--out {out} is the model folder itself; choose another folder.")
    shutil.rmtree(out, ignore_errors=True)
    is_adapter = (source / "adapter_config.json").exists()
    _copy(source, out, cfg, is_adapter)
    if not (is_adapter and cfg.lora_export != "merged") and not (out / "config_sentence_transformers.json").exists():
        write_st_config(out)  # checkpoints trained before rerankforge wrote it
    try:
        if cfg.eval_report:
            add_eval_results(source, Path(cfg.eval_report).expanduser(), card_folder=out)
        card = load_card(out) or ModelCard("---\n{}\n---\n")
    except CardError as exc:
        raise PushError(f"{exc} Nothing was uploaded.") from exc
    if is_adapter and cfg.lora_export != "merged":
        card.data.library_name = "peft"  # the Hub loads adapters through peft, on top of base_model
    else:
        card.data.library_name = card.data.library_name or "sentence-transformers"
    card.data.pipeline_tag = card.data.pipeline_tag or "text-ranking"
    card.data.license = cfg.license or card.data.license or "apache-2.0"
    card.data.datasets = list(cfg.datasets) or card.data.datasets or []
    if cfg.repo_id:
        set_model_id(card, cfg.repo_id)
    card.save(out / "README.md")
    return out


def validate(folder: Path) -> list[str]:
    """Every reason ``folder`` is not fit to publish (empty when it is): card metadata, a model-index with at
    least one result, and loading with each library that should load it."""
    problems = []
    try:
        card = load_card(folder)
    except CardError as exc:
        card = None
        problems.append(str(exc))
    if card is None and not problems:
        problems.append(f"{folder} has no README.md (model card). Train with rerankforge, which writes one.")
    if card is not None:
        missing = [k for k in REQUIRED_METADATA if not card.data.get(k)]
        if missing:
            problems.append(f"README.md metadata lacks {', '.join(missing)}" +
                            (" (pass --datasets user/name or datasets=[...])" if "datasets" in missing else "") + ".")
        if not card.data.eval_results:
            problems.append(NO_RESULTS)
    problems += _load_problems(folder, adapter=(folder / "adapter_config.json").exists())
    return problems


def _load_problems(folder: Path, adapter: bool) -> list[str]:
    problems = []
    pair = ("what is a reranker?", "A reranker orders passages by relevance to a query.")
    checks = {"rerankforge Reranker": lambda: _reranker_score(folder, pair)}
    if not adapter:
        checks.update({"sentence_transformers.CrossEncoder": lambda: _cross_encoder_score(folder, pair),
                       "AutoModelForSequenceClassification": lambda: _auto_score(folder, pair),
                       "transformers.pipeline('text-classification')": lambda: _pipeline_score(folder, pair)})
    checks.update(_exported_checks(folder, pair))
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # report every loader that fails, not only the first
            problems.append(f"does not load with {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return problems


def _exported_checks(folder: Path, pair) -> dict:
    """A load check per OpenVINO model ``rerankforge export`` saved in ``folder`` (none when it has none)."""
    # rerankforge.models.openvino_backend imports torch, which this module does not otherwise load
    from rerankforge.models.openvino_backend import OPENVINO_FILES, exported_model
    from rerankforge.models.reranker import Reranker

    def check(quantize):
        return lambda: Reranker(str(folder), device="cpu", backend="openvino", quantize=quantize).score(*pair)

    return {f"rerankforge Reranker (backend=openvino, quantize={q})": check(q)
            for q in OPENVINO_FILES if exported_model(folder, q) is not None}


def _reranker_score(folder: Path, pair) -> float:
    # rerankforge.models.reranker imports torch, which this module does not otherwise load
    from rerankforge.models.reranker import Reranker

    return Reranker(str(folder), device="cpu").score(pair[0], [pair[1]])[0]


def _cross_encoder_score(folder: Path, pair) -> float:
    # sentence-transformers imports torch (slow); only this path needs it
    from sentence_transformers.cross_encoder import CrossEncoder

    return float(CrossEncoder(str(folder), device="cpu").predict([pair])[0])


def _auto_score(folder: Path, pair) -> float:
    # torch is slow to import; only this path needs it
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        return float(model(**AutoTokenizer.from_pretrained(folder)(*pair, return_tensors="pt")).logits[0, 0])


def _pipeline_score(folder: Path, pair) -> float:
    # transformers imports torch (slow); only this path needs it
    from transformers import pipeline

    return pipeline("text-classification", model=str(folder), device="cpu")({"text": pair[0], "text_pair": pair[1]})["score"]


def push(cfg: PushConfig) -> str:
    """Stage, validate, and (unless ``dry_run``) upload; returns a one-line summary.

    Raises:
        PushError: missing arguments, a folder that fails validation, no Hub token, or a failed upload.
    """
    if not cfg.model or (not cfg.repo_id and not cfg.dry_run):
        raise PushError("Pass --model <checkpoint folder> and --repo-id <user/name> (or --dry-run).")
    folder = stage(cfg)
    problems = validate(folder)
    if problems:
        raise PushError(f"{folder} is not ready to publish:\n" + "\n".join(f"  - {p}" for p in problems))
    if cfg.dry_run:
        return f"Dry run: {folder} is what would be uploaded to {cfg.repo_id or '<repo-id>'}; it loads and its card is complete."
    if not get_token():
        raise PushError("No Hugging Face token: run `hf auth login` or set HF_TOKEN. Nothing was uploaded.")
    api = HfApi()
    try:
        url = api.create_repo(cfg.repo_id, private=cfg.private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(repo_id=cfg.repo_id, folder_path=str(folder), commit_message=cfg.commit_message)
    except Exception as exc:  # network, auth, permissions: say so plainly, claim nothing
        raise PushError(f"Upload to {cfg.repo_id} failed ({type(exc).__name__}: {exc}). Nothing is claimed "
                        f"uploaded; the staged folder is {folder}.") from exc
    return f"Uploaded {folder} to {url} ({getattr(commit, 'commit_url', commit)})."
