"""Domain values as JSON, one way for every door: the CLI's ``--json`` and the API's bodies must
match byte for byte in meaning (the CLI over the API prints what the API sent)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default``: datetimes as ISO 8601 text, decimals as text (never floats)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def jsonable(value: Any) -> Any:
    """``value`` with what JSON cannot hold replaced as ``json_default`` does, containers walked."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | Decimal):
        return json_default(value)
    return value


def encode(value: Any) -> bytes:
    """Compact JSON, as the API sends it."""
    return json.dumps(value, default=json_default, separators=(",", ":")).encode()
