"""`ArtifactRecord`: what is stored about one artifact.

Kept free of the database layer, so a pod-per-job process (which has no database) can build
records to report without importing SQLAlchemy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ArtifactRecord:
    """A stored artifact: where it is and what it holds."""

    job_id: uuid.UUID
    attempt: int
    name: str
    url: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime
    id: int | None = None
