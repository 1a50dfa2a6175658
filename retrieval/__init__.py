"""retrieval: the corpus and the first stage over it.

Reading a corpus and its labels (BEIR folders, single files, folders of documents), chunking long documents,
the Arrow corpus store, the bi-encoder and its embedding cache, FAISS indexes, BM25, and ``FirstStage`` (dense,
BM25 or their hybrid). Mining, synthetic labels, eval and the server all find candidates through this package.
"""
