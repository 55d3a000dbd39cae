"""What a job may return: JSON, at most 1 MiB. Workers and pod-per-job processes check alike."""

from __future__ import annotations

import json
from typing import Any

from jobyard.domain.limits import MAX_RESULT_BYTES
from jobyard.errors import ResultNotSerializable, ResultTooLarge


def storable_result(result: Any) -> Any:
    """The result as it will be stored (a JSON round trip).

    Raises:
        ResultNotSerializable: not JSON (NaN and infinities included).
        ResultTooLarge: over `MAX_RESULT_BYTES` once serialized.
    """
    try:
        text = json.dumps(result, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ResultNotSerializable(
            f"the result ({type(result).__name__}) cannot be stored as JSON: {exc}"
        ) from exc
    if len(text) > MAX_RESULT_BYTES:
        raise ResultTooLarge(
            f"the result is {len(text)} bytes; the limit is {MAX_RESULT_BYTES} (1 MiB): store "
            "large outputs elsewhere and return a reference"
        )
    return json.loads(text)
