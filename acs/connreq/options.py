"""How connection requests are made: the requester's limits, from ``ACS_CONNREQ_*`` (pure).

Apart from the Twisted requester, so that the CLI reads them without importing Twisted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Options:
    """How connection requests are made; ``from_env`` reads them from ``ACS_CONNREQ_*``."""

    #: seconds for each HTTP request (connect and answer) and for resolving a UDP host
    timeout: float = 5.0
    #: seconds between two requests to one device
    min_interval: float = 5.0
    #: devices kicked at the same time
    concurrency: int = 50
    #: answer an HTTP Basic challenge (the password goes in clear)
    allow_basic: bool = False
    #: identical UDP datagrams per request
    udp_copies: int = 3
    #: seconds before the second datagram; the gap doubles after each one
    udp_gap: float = 0.25

    ENV = {
        "timeout": "ACS_CONNREQ_TIMEOUT",
        "min_interval": "ACS_CONNREQ_MIN_INTERVAL",
        "concurrency": "ACS_CONNREQ_CONCURRENCY",
        "allow_basic": "ACS_CONNREQ_ALLOW_BASIC",
        "udp_copies": "ACS_CONNREQ_UDP_COPIES",
    }

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 300:
            raise ValueError(f"{self.ENV['timeout']}: the time-out is 0-300 seconds, not {self.timeout:g}")
        if not 0 <= self.min_interval <= 3600:
            raise ValueError(f"{self.ENV['min_interval']}: 0-3600 seconds, not {self.min_interval:g}")
        if not 1 <= self.concurrency <= 10_000:
            raise ValueError(f"{self.ENV['concurrency']}: 1-10000 devices at once, not {self.concurrency}")
        if not 1 <= self.udp_copies <= 10:
            raise ValueError(f"{self.ENV['udp_copies']}: 1-10 datagrams, not {self.udp_copies}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Options:
        """Options from ``ACS_CONNREQ_TIMEOUT``, ``_MIN_INTERVAL``, ``_CONCURRENCY``, ``_ALLOW_BASIC`` (1/0)
        and ``_UDP_COPIES``; ValueError naming the variable that is wrong and what it takes."""
        env = os.environ if env is None else env
        given: dict[str, Any] = {}
        for name, var in cls.ENV.items():
            text = env.get(var, "").strip()
            if not text:
                continue
            if name == "allow_basic":
                if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(f"{var}: 1 or 0, not {text!r}")
                given[name] = text.lower() in ("1", "true", "yes")
                continue
            try:
                given[name] = int(text) if name in ("concurrency", "udp_copies") else float(text)
            except ValueError:
                raise ValueError(f"{var}: a number, not {text!r}") from None
        return cls(**given)
