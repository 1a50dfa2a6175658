"""eval: retrieve → rerank → generate, measured against the best first stage, with a report.

``run.evaluate(cfg)`` is the stage; ``pipeline.py`` the pipeline that ``serve`` also answers with.
"""
