"""A CPE simulator for testing the ACS: Cisco MPP phones that speak CWMP over real HTTP.

:mod:`~acs.testing.datamodel` builds a phone's TR-069 tree (Device:2 with a
TR-104 v2 VoiceService), :mod:`~acs.testing.phone` is the phone's CWMP logic
with no I/O, and :mod:`~acs.testing.client` carries its sessions over HTTP/1.1
with cookies and authentication. Tests, demos and end-to-end checks of the
server use them; the server itself never imports this package.
"""

from typing import Any

from acs.testing.datamodel import MODELS, DataModel, Parameter, PhoneModel
from acs.testing.phone import PhoneSession, SessionError, SimulatedPhone

__all__ = [
    "MODELS",
    "DataModel",
    "Exchange",
    "Parameter",
    "PhoneModel",
    "PhoneSession",
    "SessionError",
    "SessionLog",
    "SimulatedPhone",
    "run_session",
]

_CLIENT = ("Exchange", "SessionLog", "run_session")


def __getattr__(name: str) -> Any:
    """The client's names, imported on first use so that ``python -m acs.testing.client`` runs cleanly."""
    if name in _CLIENT:
        from acs.testing import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
