"""Choose the event bus implementation from the URL scheme."""

from __future__ import annotations

from jobyard.events.amqp_bus import AmqpEventListener, AmqpEventPublisher
from jobyard.events.bus import EventListener, EventPublisher, channel_name
from jobyard.events.redis_bus import RedisEventListener, RedisEventPublisher


def _is_amqp(url: str) -> bool:
    return url.split("://", 1)[0] in {"amqp", "amqps", "pyamqp"}


def make_publisher(url: str, prefix: str) -> EventPublisher:
    """A publisher for the bus at `url` (Redis or RabbitMQ)."""
    if _is_amqp(url):
        return AmqpEventPublisher(url, channel_name(prefix))
    return RedisEventPublisher(url, channel_name(prefix))


def make_listener(url: str, prefix: str) -> EventListener:
    """A listener for the bus at `url` (Redis or RabbitMQ)."""
    if _is_amqp(url):
        return AmqpEventListener(url, channel_name(prefix))
    return RedisEventListener(url, channel_name(prefix))
