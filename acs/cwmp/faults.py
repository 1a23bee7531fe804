"""CWMP fault codes, their meanings in words, and the codec's exception types.

8000-8006 are sent by the ACS, 9000-9032 by the CPE. The Client/Server split
follows the table most CPE agents share (catawampus, easycwmp, icwmp); where
they disagree (9020, 9026-9032) the majority is taken.
"""

from __future__ import annotations

#: code -> (meaning, SOAP faultcode)
FAULTS: dict[int, tuple[str, str]] = {
    8000: ("Method not supported", "Server"),
    8001: ("Request denied (no reason specified)", "Server"),
    8002: ("Internal error", "Server"),
    8003: ("Invalid arguments", "Client"),
    8004: ("Resources exceeded", "Server"),
    8005: ("Retry request", "Server"),
    8006: ("ACS version incompatible with CPE", "Server"),
    9000: ("Method not supported", "Server"),
    9001: ("Request denied (no reason specified)", "Server"),
    9002: ("Internal error", "Server"),
    9003: ("Invalid arguments", "Client"),
    9004: ("Resources exceeded", "Server"),
    9005: ("Invalid parameter name", "Client"),
    9006: ("Invalid parameter type", "Client"),
    9007: ("Invalid parameter value", "Client"),
    9008: ("Attempt to set a non-writable parameter", "Client"),
    9009: ("Notification request rejected", "Server"),
    9010: ("File transfer failure (download)", "Server"),
    9011: ("Upload failure", "Server"),
    9012: ("File transfer server authentication failure", "Server"),
    9013: ("Unsupported protocol for file transfer", "Server"),
    9014: ("File transfer failure: unable to join multicast group", "Server"),
    9015: ("File transfer failure: unable to contact file server", "Server"),
    9016: ("File transfer failure: unable to access file", "Server"),
    9017: ("File transfer failure: unable to complete download", "Server"),
    9018: ("File transfer failure: file corrupted", "Server"),
    9019: ("File transfer failure: file authentication failure", "Server"),
    9020: ("File transfer failure: unable to complete download within specified time windows", "Server"),
    9021: ("Cancellation of file transfer not permitted in current transfer state", "Client"),
    9022: ("Invalid UUID format", "Client"),
    9023: ("Unknown Execution Environment", "Client"),
    9024: ("Disabled Execution Environment", "Client"),
    9025: ("Deployment Unit to Execution Environment mismatch", "Client"),
    9026: ("Duplicate Deployment Unit", "Client"),
    9027: ("System resources exceeded", "Server"),
    9028: ("Unknown Deployment Unit", "Client"),
    9029: ("Invalid Deployment Unit state", "Client"),
    9030: ("Invalid Deployment Unit update: downgrade not permitted", "Client"),
    9031: ("Invalid Deployment Unit update: version not specified", "Client"),
    9032: ("Invalid Deployment Unit update: version already exists", "Client"),
}


def describe(code: int | None) -> str:
    """The meaning of a fault code in words, for operators; ranges where no code is assigned."""
    if code is None:
        return "no CWMP fault code"
    if code in FAULTS:
        return FAULTS[code][0]
    if 8800 <= code <= 8899:
        return "Vendor-specific ACS fault"
    if 9800 <= code <= 9899:
        return "Vendor-specific CPE fault"
    if 8000 <= code <= 8999 or 9000 <= code <= 9999:
        return "Reserved fault code"
    return "Unknown fault code"


def soap_faultcode(code: int) -> str:
    """``Client`` when the request was bad, ``Server`` when the receiver failed."""
    return FAULTS.get(code, ("", "Server"))[1]


class CwmpError(Exception):
    """The codec's one error: a message that cannot be read or written, with the fault it earns.

    ``code`` is the CWMP fault an ACS answers with (8003 for a malformed message,
    8004 for one over the size cap, 8000 for an unknown method).
    """

    code = 8003

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def meaning(self) -> str:
        return describe(self.code)


class MessageTooLarge(CwmpError):
    """The body is over the configured size cap (HTTP 413 on the wire)."""

    code = 8004


class MethodNotSupported(CwmpError):
    """A well-formed envelope whose RPC this codec does not know."""

    code = 8000
