"""Rendering jobyard.toml into deployment manifests."""
