"""HTTP content negotiation (pure): the q-values of an Accept or Accept-Encoding header.

Shared by the profile server (gzip when the phone asks) and the NBI (JSON or XML).
"""

from __future__ import annotations


def qualities(header: str) -> dict[str, float]:
    """Each media range or coding of the header (lower case) with its q-value (RFC 9110 12.4.2):
    1 when not given, 0 when unreadable; a range given twice keeps the last."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        token, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if token:
            weights[token.lower()] = weight
    return weights
