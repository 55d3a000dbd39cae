"""Pool environments: a virtualenv per pool with `requirements`, built with uv on demand."""
