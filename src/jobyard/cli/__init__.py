"""The `jobyard` command line."""
