"""eval: retrieve → rerank → generate, measured against the best first stage, with a report.

``run.evaluate(cfg)`` is the stage (``rerankforge.evaluate`` is the same with a config path or overrides);
``pipeline.py`` the pipeline that ``serve`` also answers with, ``measure.py`` what is measured of its runs.
"""

from rerankforge.core.modules import attribute


def __getattr__(name: str):
    if name != "evaluate":
        raise AttributeError(f"module 'rerankforge.eval' has no attribute {name!r}")
    return attribute("rerankforge.api:evaluate")  # the public function, which takes a config path too
