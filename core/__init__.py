"""core: what every layer shares, importing nothing else of rerankforge.

Typed config loading, manifests, atomic writes and hashing (``io``), the input problem reports and record readers,
IR metrics, the dev split's file contract, distributed helpers, progress bars and the missing-extra error.
"""
