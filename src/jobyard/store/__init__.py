"""Durable state: SQLAlchemy models, queries per aggregate, Alembic migrations."""
