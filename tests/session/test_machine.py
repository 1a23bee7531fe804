"""The session state machine, with plain bytes in and out."""

from __future__ import annotations

import pytest

from acs import cwmp
from acs.cwmp import rpc
from acs.session.machine import (
    InformReceived,
    ProtocolError,
    Session,
    SessionEnded,
    TaskDone,
    TaskFailed,
    TransferCompleted,
)
from tests.cwmp_messages import inform, message


def started(**kw: object) -> Session:
    s = Session("s1", **kw)  # type: ignore[arg-type]
    s.receive(inform("1 BOOT"))
    return s


def test_inform_is_answered_in_the_cpes_namespace_with_its_id() -> None:
    s = Session("s1")
    step = s.receive(inform("0 BOOTSTRAP", "1 BOOT", ns=cwmp.NAMESPACES["1.0"]))
    assert isinstance(step.reply.body, rpc.InformResponse)
    assert step.reply.ID == "cpe-1"
    assert step.reply.ns == "urn:dslforum-org:cwmp-1-0"
    assert step.reply.body.MaxEnvelopes == 1
    (effect,) = step.effects
    assert isinstance(effect, InformReceived)
    assert effect.device_id == "00562B-CP-7841-3PCC-FCH2233A1B2"
    assert effect.inform.event_codes == ["0 BOOTSTRAP", "1 BOOT"]
    assert not step.wants_task
    # the reply is bytes a CPE reads
    assert b"<cwmp:InformResponse>" in cwmp.serialize(step.reply)


def test_cwmp_1_4_cpe_gets_use_cwmp_version() -> None:
    s = Session("s1")
    step = s.receive(inform(SupportedCWMPVersions=("1.0", "1.2", "1.4")))
    assert step.reply.UseCWMPVersion == "1.4"
    assert s.version == "1.4"


def test_first_message_must_be_inform() -> None:
    s = Session("s1")
    with pytest.raises(ProtocolError, match="starts with an Inform"):
        s.receive(message(rpc.GetRPCMethods()))
    with pytest.raises(ProtocolError, match="empty POST"):
        s.receive(b"")


def test_empty_post_hands_the_turn_to_the_acs_which_sends_tasks_then_204() -> None:
    s = started()
    step = s.receive(b"")
    assert step.wants_task and step.reply is None
    step = s.send(7, rpc.GetParameterValues(["Device.DeviceInfo."]))
    assert step.reply.ID == "7.1"
    assert isinstance(step.reply.body, rpc.GetParameterValues)
    uptime = rpc.ParameterValueStruct("Device.DeviceInfo.UpTime", 42, "unsignedInt")
    answer = rpc.GetParameterValuesResponse([uptime])
    step = s.receive(message(answer, id="7.1"))
    (done,) = step.effects
    assert isinstance(done, TaskDone) and done.task_id == 7
    assert done.response.ParameterList[0].Value == 42
    assert step.wants_task
    step = s.finish()
    assert step.reply is None and isinstance(step.effects[0], SessionEnded)
    with pytest.raises(ProtocolError, match="ended"):
        s.receive(b"")


def test_cpe_fault_fails_the_task_with_its_code() -> None:
    s = started()
    s.receive(b"")
    s.send(3, rpc.SetParameterValues([rpc.ParameterValueStruct("Device.X", "1", "string")], "k"))
    fault = rpc.Fault(
        FaultCode=9003,
        FaultString="Invalid arguments",
        SetParameterValuesFault=[rpc.SetParameterValuesFault("Device.X", 9008, "read-only")],
        faultcode="Client",
    )
    step = s.receive(message(fault, id="3.1"))
    (failed,) = step.effects
    assert isinstance(failed, TaskFailed)
    assert (failed.task_id, failed.fault_code) == (3, 9003)
    assert failed.detail.SetParameterValuesFault[0].FaultCode == 9008


def test_wrong_response_fails_the_task_and_the_session_goes_on() -> None:
    s = started()
    s.receive(b"")
    s.send(4, rpc.Reboot("k"))
    step = s.receive(message(rpc.FactoryResetResponse(), id="4.1"))
    (failed,) = step.effects
    assert failed.fault_code == 8003 and "expected RebootResponse" in failed.fault_string
    assert step.wants_task


def test_transfer_complete_is_answered_and_recorded() -> None:
    s = started()
    tc = rpc.TransferComplete("acs-9", rpc.FaultStruct(0, ""))
    step = s.receive(message(tc))
    assert isinstance(step.reply.body, rpc.TransferCompleteResponse)
    assert step.reply.ID == "cpe-2"
    assert isinstance(step.effects[0], TransferCompleted)
    assert step.effects[0].message.CommandKey == "acs-9"


def test_cpe_get_rpc_methods_lists_what_the_acs_implements() -> None:
    step = started().receive(message(rpc.GetRPCMethods()))
    assert "TransferComplete" in step.reply.body.MethodList
    assert "Inform" in step.reply.body.MethodList


def test_unknown_cpe_method_gets_fault_8000() -> None:
    body = inform().replace(b"cwmp:Inform>", b"cwmp:Frobnicate>")
    s = started()
    step = s.receive(body)
    assert isinstance(step.reply.body, rpc.Fault)
    assert step.reply.body.FaultCode == 8000
    assert step.reply.body.faultcode == "Server"


def test_held_requests_are_refused() -> None:
    s = Session("s1", hold_requests=True)
    step = s.receive(inform())
    assert step.reply.HoldRequests is True
    step = s.receive(message(rpc.TransferComplete("k")))
    assert step.reply.body.FaultCode == 8001
    assert not step.effects


def test_second_inform_and_stray_response_are_protocol_errors() -> None:
    s = started()
    with pytest.raises(ProtocolError, match="second Inform"):
        s.receive(inform())
    with pytest.raises(ProtocolError, match="answers nothing"):
        s.receive(message(rpc.RebootResponse()))


def test_empty_post_instead_of_a_response_fails_the_task() -> None:
    s = started()
    s.receive(b"")
    s.send(5, rpc.GetRPCMethods())
    step = s.receive(b"")
    assert isinstance(step.effects[0], TaskFailed) and step.effects[0].task_id == 5
    assert step.wants_task


def test_state_survives_a_round_trip_through_a_dict() -> None:
    s = started()
    s.receive(b"")
    s.send(1, rpc.GetRPCMethods())
    again = Session.from_dict(s.to_dict())
    step = again.receive(message(rpc.GetRPCMethodsResponse(["GetParameterValues"]), id="1.1"))
    assert isinstance(step.effects[0], TaskDone)
