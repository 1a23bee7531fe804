"""Responses that say success but cannot be one, and faults a CPE wrote oddly, fail their task.

Seen in the field: an AddObjectResponse with InstanceNumber 0 and Status 9005 for a table the CPE
does not have; a C agent that writes its cwmp:Fault inside ``faultstring``. Neither is a success,
and neither must lose the CPE's own fault code.
"""

from __future__ import annotations

import pytest

from acs.cwmp import rpc
from acs.session.machine import Session, TaskDone, TaskFailed
from tests.cwmp_messages import inform, message

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def answered(request: rpc.Request, answer: bytes) -> TaskDone | TaskFailed:
    """The effect of ``answer`` to ``request`` (sent as task 7) in a fresh session."""
    s = Session("s1")
    s.receive(inform("1 BOOT"))
    s.receive(b"")
    s.send(7, request)
    step = s.receive(answer)
    assert step.wants_task  # the session goes on
    (effect,) = step.effects
    assert isinstance(effect, TaskDone | TaskFailed)
    return effect


ADD = rpc.AddObject("Device.Services.VoiceService.1.Nope.", "k")


def test_add_object_answered_with_instance_0_and_status_9005_is_that_fault() -> None:
    effect = answered(ADD, message(rpc.AddObjectResponse(InstanceNumber=0, Status=9005), id="7.1"))

    assert isinstance(effect, TaskFailed)
    assert effect.fault_code == 9005
    assert effect.fault_string == (
        "the CPE answered AddObject with InstanceNumber 0 and Status 9005 (Invalid parameter name): "
        "no instance was created"
    )


@pytest.mark.parametrize("number", ["0", "-3", None])
def test_add_object_without_a_real_instance_number_is_a_fault_in_words(number: str | None) -> None:
    body = message(rpc.AddObjectResponse(InstanceNumber=1, Status=0), id="7.1")
    replaced = b"" if number is None else f"<InstanceNumber>{number}</InstanceNumber>".encode()
    body = body.replace(b"<InstanceNumber>1</InstanceNumber>", replaced)

    effect = answered(ADD, body)

    assert isinstance(effect, TaskFailed)
    assert effect.fault_code is None
    shown = number or "0"  # left out reads as 0: no instance has that number
    assert (
        effect.fault_string
        == f"the CPE answered AddObject with InstanceNumber {shown}: no instance was created"
    )


@pytest.mark.parametrize(
    ("request_", "response"),
    [
        (rpc.SetParameterValues([], "k"), rpc.SetParameterValuesResponse(Status=9007)),
        (rpc.DeleteObject("Device.X.1.", "k"), rpc.DeleteObjectResponse(Status=9005)),
        (
            rpc.Download("k", "1 Firmware Upgrade Image", "http://fw/x.loads"),
            rpc.DownloadResponse(Status=9010),
        ),
        (rpc.Upload("k", "1 Vendor Configuration File", "http://up/"), rpc.UploadResponse(Status=9011)),
    ],
)
def test_a_fault_code_in_status_is_that_fault(request_: rpc.Request, response: rpc.Response) -> None:
    effect = answered(request_, message(response, id="7.1"))

    assert isinstance(effect, TaskFailed)
    assert effect.fault_code == response.Status
    assert f"with Status {response.Status}" in effect.fault_string


def test_a_status_that_is_no_fault_code_is_a_fault_in_words() -> None:
    effect = answered(
        rpc.SetParameterValues([], "k"), message(rpc.SetParameterValuesResponse(Status=2), id="7.1")
    )

    assert isinstance(effect, TaskFailed)
    assert effect.fault_code is None
    assert effect.fault_string == (
        "the CPE answered SetParameterValues with Status 2: not a success (Status is 0 or 1)"
    )


def soap_fault(inside: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><s:Header>'
        f'<cwmp:ID s:mustUnderstand="1">7.1</cwmp:ID></s:Header><s:Body><s:Fault>'
        f"<faultcode>Client</faultcode>{inside}</s:Fault></s:Body></s:Envelope>"
    ).encode()


@pytest.mark.parametrize(("code", "text"), [(9003, "Invalid arguments"), (9005, "Invalid parameter name")])
def test_a_fault_inside_faultstring_fails_the_task_with_its_code_and_string(code: int, text: str) -> None:
    inside = (
        f"<faultstring><cwmp:Fault><FaultCode>{code}</FaultCode><FaultString>{text}</FaultString>"
        "</cwmp:Fault></faultstring>"
    )

    effect = answered(rpc.GetParameterValues(["Device.Nope"]), soap_fault(inside))

    assert isinstance(effect, TaskFailed)
    assert (effect.fault_code, effect.fault_string) == (code, text)


def test_a_soap_fault_without_a_cwmp_code_is_not_given_one() -> None:
    effect = answered(
        rpc.GetParameterValues(["Device.X"]), soap_fault("<faultstring>out of memory</faultstring>")
    )

    assert isinstance(effect, TaskFailed)
    assert effect.fault_code is None
    assert effect.fault_string == (
        "the CPE answered with a SOAP fault Client without a CWMP fault code: out of memory"
    )
