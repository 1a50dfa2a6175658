"""``rerankforge push --model runs/x/final --repo-id user/name [--private] [--dry-run]``

Stages the folder that would be uploaded (LoRA adapters as they are, or merged), completes the model card's
Hub metadata, and checks that the folder loads with sentence-transformers' CrossEncoder,
AutoModelForSequenceClassification and ``transformers.pipeline``. ``--dry-run`` stops there; otherwise the
folder is uploaded with ``huggingface_hub`` (create the repo, then upload the folder).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import yaml

REQUIRED_METADATA = ("base_model", "datasets", "library_name", "pipeline_tag", "license")


class PushError(RuntimeError):
    """The folder is not fit to publish, or the upload could not happen; nothing was uploaded."""


@dataclass
class PushConfig:
    model: Optional[str] = None  # a checkpoint folder (final/ of a training run)
    repo_id: Optional[str] = None  # user/name on the Hub
    private: bool = False
    dry_run: bool = False
    out: Optional[str] = None  # where the staged folder goes (default: <model>-hub next to the model)
    lora_export: Literal["as_is", "adapter", "merged"] = "as_is"  # for LoRA adapter checkpoints
    datasets: list[str] = field(default_factory=list)  # Hub dataset ids; default: from the training data path
    license: str = "apache-2.0"
    commit_message: str = "Upload reranker trained with rerankforge"


def read_card(folder: Path) -> tuple[dict, str]:
    """``(metadata, body)`` of ``folder/README.md``; empty when there is none."""
    path = folder / "README.md"
    if not path.exists():
        return {}, ""
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", path.read_text(encoding="utf-8"), re.DOTALL)
    return (yaml.safe_load(match.group(1)) or {}, match.group(2)) if match else ({}, path.read_text(encoding="utf-8"))


def stage(cfg: PushConfig) -> Path:
    """Write the folder to upload and return it; the model folder itself is never changed."""
    source = Path(cfg.model).expanduser()
    if not source.is_dir():
        raise PushError(f"--model {cfg.model} is not a folder. Pass a checkpoint folder such as runs/train/x/final.")
    out = Path(cfg.out).expanduser() if cfg.out else source.with_name(source.name + "-hub")
    if out.resolve() == source.resolve():
        raise PushError(f"--out {out} is the model folder itself; choose another folder.")
    shutil.rmtree(out, ignore_errors=True)
    is_adapter = (source / "adapter_config.json").exists()
    if is_adapter and cfg.lora_export == "merged":
        from rerankforge.models.loading import load_seq_cls, load_tokenizer

        tokenizer = load_tokenizer(str(source))
        load_seq_cls(str(source), tokenizer=tokenizer).merge_and_unload().save_pretrained(out)
        tokenizer.save_pretrained(out)
        shutil.copy(source / "README.md", out / "README.md") if (source / "README.md").exists() else None
    else:
        shutil.copytree(source, out, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    meta, body = read_card(out)
    if is_adapter and cfg.lora_export != "merged":
        meta["library_name"] = "peft"  # the Hub loads adapters through peft, on top of base_model
    else:
        meta.setdefault("library_name", "sentence-transformers")
    meta.setdefault("pipeline_tag", "text-ranking")
    meta["license"] = cfg.license
    meta["datasets"] = list(cfg.datasets) or meta.get("datasets") or []
    (out / "README.md").write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n{body}", encoding="utf-8")
    return out


def validate(folder: Path) -> list[str]:
    """Every reason ``folder`` is not fit to publish (empty when it is): card metadata, metrics, loading."""
    problems = []
    meta, body = read_card(folder)
    missing = [k for k in REQUIRED_METADATA if not meta.get(k)]
    if missing:
        problems.append(f"README.md metadata lacks {', '.join(missing)}" +
                        (" (pass --datasets user/name or datasets=[...])" if "datasets" in missing else "") + ".")
    if "| nDCG@10 |" not in body:
        problems.append("README.md has no metrics table (train with data.dev set, so the card records dev metrics).")
    if (folder / "adapter_config.json").exists():
        problems += _load_problems(folder, adapter=True)
    else:
        problems += _load_problems(folder, adapter=False)
    return problems


def _load_problems(folder: Path, adapter: bool) -> list[str]:
    problems = []
    pair = ("what is a reranker?", "A reranker orders passages by relevance to a query.")
    checks = {"rerankforge Reranker": lambda: _reranker_score(folder, pair)}
    if not adapter:
        checks.update({"sentence_transformers.CrossEncoder": lambda: _cross_encoder_score(folder, pair),
                       "AutoModelForSequenceClassification": lambda: _auto_score(folder, pair),
                       "transformers.pipeline('text-classification')": lambda: _pipeline_score(folder, pair)})
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # report every loader that fails, not only the first
            problems.append(f"does not load with {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return problems


def _reranker_score(folder: Path, pair) -> float:
    from rerankforge.models.reranker import Reranker

    return Reranker(str(folder), device="cpu").score(pair[0], [pair[1]])[0]


def _cross_encoder_score(folder: Path, pair) -> float:
    from sentence_transformers.cross_encoder import CrossEncoder

    return float(CrossEncoder(str(folder), device="cpu").predict([pair])[0])


def _auto_score(folder: Path, pair) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    return float(model(**AutoTokenizer.from_pretrained(folder)(*pair, return_tensors="pt")).logits[0, 0])


def _pipeline_score(folder: Path, pair) -> float:
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
    from huggingface_hub import HfApi, get_token

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
