"""Built-in job packs."""
