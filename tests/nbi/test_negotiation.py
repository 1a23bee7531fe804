"""Which of JSON and XML a request's Accept header asks for (pure)."""

from __future__ import annotations

import pytest

from acs.nbi.routing import prefers_xml


@pytest.mark.parametrize(
    ("accept", "xml"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/xml", True),
        ("text/xml", True),
        ("application/*", False),  # a tie is JSON
        ("application/xml, application/json", False),
        ("application/xml, application/json;q=0.9", True),
        ("application/xml;q=0.5, */*", False),
        ("application/xml;q=0.5, */*;q=0.1", True),
        ("text/*, application/json;q=0.2", True),
        ("application/xml;q=bad, application/json;q=0.1", False),
        ("text/html", False),
    ],
)
def test_accept(accept: str, xml: bool) -> None:
    assert prefers_xml(accept) is xml
