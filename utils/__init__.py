"""Shared plumbing for every stage: typed configs, manifests, atomic writes, hashing."""
