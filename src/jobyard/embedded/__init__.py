"""The embedded default: a private Redis for `jobyard up` with no configuration."""
