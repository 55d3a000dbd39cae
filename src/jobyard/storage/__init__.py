"""Artifact storage: where jobs write their outputs (any fsspec URL), and the records of them."""
