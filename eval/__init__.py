"""eval: retrieve → rerank → generate, measured (lands with issue 4)."""
