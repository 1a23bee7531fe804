"""Fault codes are shown to operators in words, and the codec's errors carry the fault they earn."""

from __future__ import annotations

import pytest

from acs.cwmp import CwmpError, MessageTooLarge, describe
from acs.cwmp.faults import FAULTS, MethodNotSupported, soap_faultcode

#: TR-069 Annex A's table, as the essentials list it
MEANINGS = {
    8000: "Method not supported",
    8001: "Request denied (no reason specified)",
    8002: "Internal error",
    8003: "Invalid arguments",
    8004: "Resources exceeded",
    8005: "Retry request",
    8006: "ACS version incompatible with CPE",
    9000: "Method not supported",
    9001: "Request denied (no reason specified)",
    9002: "Internal error",
    9003: "Invalid arguments",
    9004: "Resources exceeded",
    9005: "Invalid parameter name",
    9006: "Invalid parameter type",
    9007: "Invalid parameter value",
    9008: "Attempt to set a non-writable parameter",
    9009: "Notification request rejected",
    9010: "File transfer failure (download)",
    9011: "Upload failure",
    9012: "File transfer server authentication failure",
    9013: "Unsupported protocol for file transfer",
    9014: "File transfer failure: unable to join multicast group",
    9015: "File transfer failure: unable to contact file server",
    9016: "File transfer failure: unable to access file",
    9017: "File transfer failure: unable to complete download",
    9018: "File transfer failure: file corrupted",
    9019: "File transfer failure: file authentication failure",
    9020: "File transfer failure: unable to complete download within specified time windows",
    9021: "Cancellation of file transfer not permitted in current transfer state",
    9022: "Invalid UUID format",
    9023: "Unknown Execution Environment",
    9024: "Disabled Execution Environment",
    9025: "Deployment Unit to Execution Environment mismatch",
    9026: "Duplicate Deployment Unit",
    9027: "System resources exceeded",
    9028: "Unknown Deployment Unit",
    9029: "Invalid Deployment Unit state",
    9030: "Invalid Deployment Unit update: downgrade not permitted",
    9031: "Invalid Deployment Unit update: version not specified",
    9032: "Invalid Deployment Unit update: version already exists",
}


def test_every_code_of_the_standard_is_known():
    assert set(FAULTS) == set(range(8000, 8007)) | set(range(9000, 9033))


@pytest.mark.parametrize(("code", "meaning"), sorted(MEANINGS.items()))
def test_describe_every_code(code, meaning):
    assert describe(code) == meaning


@pytest.mark.parametrize(
    ("code", "side"),
    [
        (8003, "Client"),
        (9003, "Client"),
        (9005, "Client"),
        (9007, "Client"),
        (9008, "Client"),
        (8000, "Server"),
        (8002, "Server"),
        (8005, "Server"),
        (9000, "Server"),
        (9002, "Server"),
        (9010, "Server"),
    ],
)
def test_client_means_a_bad_request_server_a_failed_receiver(code, side):
    assert soap_faultcode(code) == side


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (8800, "Vendor-specific ACS fault"),
        (8899, "Vendor-specific ACS fault"),
        (9800, "Vendor-specific CPE fault"),
        (9899, "Vendor-specific CPE fault"),
        (8007, "Reserved fault code"),
        (8799, "Reserved fault code"),
        (8900, "Reserved fault code"),
        (9033, "Reserved fault code"),
        (9799, "Reserved fault code"),
        (9999, "Reserved fault code"),
        (0, "Unknown fault code"),
        (7999, "Unknown fault code"),
        (10000, "Unknown fault code"),
        (-1, "Unknown fault code"),
        (None, "no CWMP fault code"),
    ],
)
def test_describe_ranges_and_the_unknown(code, meaning):
    assert describe(code) == meaning


def test_unknown_codes_are_server_faults():
    assert soap_faultcode(9801) == "Server"


def test_the_codec_errors_carry_their_fault():
    error = CwmpError("not well-formed XML")
    assert (error.code, error.meaning) == (8003, "Invalid arguments")
    assert str(error) == "not well-formed XML"
    too_large = MessageTooLarge("message of 2000000 bytes is over the 1048576-byte limit")
    assert (too_large.code, too_large.meaning) == (8004, "Resources exceeded")
    assert isinstance(too_large, CwmpError)
    unknown = MethodNotSupported("X_CISCO_Foo")
    assert (unknown.code, unknown.meaning) == (8000, "Method not supported")
    retry = CwmpError("database busy", code=8005)
    assert (retry.code, retry.meaning) == (8005, "Retry request")
    assert CwmpError.code == 8003  # a per-instance code does not change the class's
