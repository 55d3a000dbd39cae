"""`make_celery`: one Celery app per process, never the global current app."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.entity import Queue

from jobyard.config import Settings
from jobyard.domain.limits import MAX_PRIORITY
from jobyard.execution.celery import redis_transport

EXECUTE_TASK = "jobyard.execute"
#: Extra visibility beyond the longest job timeout, so Redis never redelivers a running job.
VISIBILITY_MARGIN_S = 600.0


def make_celery(settings: Settings, longest_timeout_s: float) -> Celery:
    """A Celery app bound to the configured broker and every pool's queue.

    Late acks with reject-on-worker-lost make a killed worker's job come back; results are
    never stored in Celery because the job database holds them. Redis brokers go through
    `redis_transport`, whose acks cannot leak prefetch credit during a Redis restart.
    """
    broker, broker_ssl = settings.broker, None
    if settings.worker.kombu_ack_fix:
        broker, broker_ssl = redis_transport.celery_broker(settings.broker)
    app = Celery("jobyard", broker=broker, set_as_current=False)
    if broker_ssl is not None:
        app.conf.broker_use_ssl = broker_ssl
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_serializer="json",
        accept_content=["json"],
        task_queues=[
            Queue(  # type: ignore[no-untyped-call]
                settings.queue_for(pool),
                routing_key=settings.queue_for(pool),
                queue_arguments={"x-max-priority": MAX_PRIORITY + 1},
            )
            for pool in settings.pools
        ],
        task_create_missing_queues=False,
        task_default_priority=None,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3.0,
        broker_transport_options=_transport_options(settings, longest_timeout_s),
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=settings.worker.remote_control,
        # One installation's workers answer only its own `inspect` and Flower, even when
        # several share a broker.
        control_exchange=f"{settings.queue_prefix}.control",
        event_exchange=f"{settings.queue_prefix}.celeryev",
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def _transport_options(settings: Settings, longest_timeout_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
    if settings.broker_is_redis:
        options.update(
            visibility_timeout=int(longest_timeout_s + VISIBILITY_MARGIN_S),
            queue_order_strategy="priority",
            priority_steps=list(range(MAX_PRIORITY + 1)),
            sep=":",
            socket_connect_timeout=3,
            socket_timeout=10,
        )
    return options
