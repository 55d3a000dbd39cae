"""Time-ordered job ids (UUID version 7).

Ids that sort by creation time make cursor pagination a plain `id < cursor` on the primary key
index and keep inserts append-only in B-trees.
"""

from __future__ import annotations

import os
import uuid


def uuid7(now_ms: int) -> uuid.UUID:
    """A UUIDv7 (RFC 9562) for the millisecond timestamp `now_ms`."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = (now_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)
