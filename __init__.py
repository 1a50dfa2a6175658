"""rerankforge: turn a general reranker into a domain reranker.

Stages talk through files: ``data_prep`` (mine hard negatives) → ``train`` (fine-tune a cross-encoder)
→ ``models`` (score, rerank, publish) → ``eval`` (retrieve → rerank → generate, measured).
"""

__version__ = "0.1.0"
