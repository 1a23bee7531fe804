"""One JSON encoding for the CLI's --json and the API's bodies: what they print must agree."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from acs.usecases.encoding import encode, jsonable

VALUE = {
    "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    "day": date(2026, 1, 2),
    "n": [Decimal("1.50"), (1, "a")],
}


def test_the_api_bytes_and_the_cli_value_are_the_same_json() -> None:
    expected = {"at": "2026-01-02T03:04:05+00:00", "day": "2026-01-02", "n": ["1.50", [1, "a"]]}
    assert json.loads(encode(VALUE)) == jsonable(VALUE) == expected
    assert b" " not in encode(VALUE).replace(b"03:04", b"")  # compact, as the API sends it


def test_what_json_cannot_hold_is_refused_not_guessed() -> None:
    with pytest.raises(TypeError):
        encode({"x": object()})
