"""Optional dependencies: import them or fail with the pip command that installs them."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

# module name -> (pip requirement, rerankforge extra that pulls it in)
EXTRAS = {
    "wandb": ("wandb", "track"),
    "tensorboard": ("tensorboard", "track"),
    "fastapi": ("fastapi", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "matplotlib": ("matplotlib", None),
    "openai": ("openai", "eval"),
    "gguf": ("gguf", "gguf"),
    "bm25s": ("bm25s", None),
    "Stemmer": ("PyStemmer", None),
    "faiss": ("faiss-cpu", None),
    "openvino": ("openvino", "openvino"),
    "nncf": ("nncf", "openvino"),
    "prometheus_client": ("prometheus-client", "serve"),
    "peft": ("peft", None),
    "llama_cpp": ("llama-cpp-python[server]", None),
}


def missing_extra_message(module: str, purpose: str) -> str:
    requirement, extra = EXTRAS.get(module, (module, None))
    options = f"pip install {requirement}" + (f" (or pip install 'rerankforge[{extra}]')" if extra else "")
    return f"{purpose} needs the package '{requirement}', which is not installed. Install it: {options}."


def is_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the pip command; ``purpose`` says what needed it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(missing_extra_message(module, purpose)) from exc
