"""rerankforge: turn a general reranker into a domain reranker.

Stages talk through files: ``data_prep`` (mine hard negatives) → ``train`` (fine-tune a cross-encoder)
→ ``models`` (score, rerank, publish) → ``eval`` (retrieve → rerank → generate, measured).

The Python API (``rerankforge/api.py``): ``Reranker``, an LLM ``Judge``, the stage functions ``mine``, ``synth``, ``train``,
``evaluate``, ``quickstart``, ``export``, ``push``, and their config classes. Names load when first used, so
``import rerankforge`` stays light.
"""

from rerankforge.core.modules import attribute

__version__ = "0.1.0"

_API = {
    "Reranker": "rerankforge.models.reranker:Reranker",
    "Judge": "rerankforge.models.judge:Judge", "JudgeConfig": "rerankforge.models.judge:JudgeConfig",
    **{name: f"rerankforge.api:{name}" for name in ("mine", "synth", "train", "evaluate", "quickstart", "export",
                                                     "push")},
    "MineConfig": "rerankforge.data_prep.config:MineConfig", "SynthConfig": "rerankforge.data_prep.config:SynthConfig",
    "TrainConfig": "rerankforge.train.config:TrainConfig", "EvalConfig": "rerankforge.eval.config:EvalConfig",
    "QuickstartConfig": "rerankforge.quickstart:QuickstartConfig",
    "ExportConfig": "rerankforge.models.export:ExportConfig", "PushConfig": "rerankforge.models.publish:PushConfig",
    "ServeConfig": "rerankforge.serve.config:ServeConfig",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'rerankforge' has no attribute {name!r}")
    return attribute(_API[name])


def __dir__() -> list[str]:
    return sorted(__all__)
