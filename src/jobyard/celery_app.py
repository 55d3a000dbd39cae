"""`celery -A jobyard.celery_app …`: Celery's own tools on jobyard's pools.

`celery -A jobyard.celery_app inspect active`, `… control …` and `… flower` (with the `flower`
package installed) reach the same broker and queues as the workers, configured from
`jobyard.toml` and `JOBYARD_*` like any other jobyard command. Loading this module connects to
nothing.
"""

from __future__ import annotations

from jobyard.config import load_settings
from jobyard.execution.celery.app import make_celery

app = make_celery(load_settings(), longest_timeout_s=0.0)
