"""Policies at each Inform (SQLite and PostgreSQL): read once and kept while their revision holds,
so a periodic Inform costs no statement for them, and every change is seen at the next Inform."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.jobs import policies, queue
from acs.session.service import SessionHandler
from acs.store.schema import revisions
from acs.testing import SimulatedPhone


class CountedReads:
    """Counts how often the enabled policies are read from the store."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        real = policies._ENABLED.mappings

        def mappings(conn: Any, params: Any = None) -> list[dict[str, Any]]:
            self.reads += 1
            return real(conn, params)

        monkeypatch.setattr(policies._ENABLED, "mappings", mappings)


def periodic(cwmp: SessionHandler, phone: SimulatedPhone) -> None:
    session, _ = cwmp.step(None, phone.envelope(phone.inform(["2 PERIODIC"])), "192.0.2.10")
    cwmp.step(session.id, None, "192.0.2.10")  # nothing queued: 204, or a task sent and left


def queued_kinds(engine: Engine, phone: SimulatedPhone) -> list[str]:
    """The kinds of the phone's open tasks (the session sent the first), cancelled on the way."""
    found = [
        t for t in queue.list_tasks(engine, device_id=phone.device_id) if t.status in ("pending", "sent")
    ]
    for task in found:
        queue.cancel(engine, task.id)
    return [t.kind for t in found]


def revision(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(revisions.c.revision).where(revisions.c.name == "policies")
        ).scalar_one()


def test_informs_read_the_policies_once_while_they_do_not_change(
    engine: Engine, cwmp: SessionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted, phone = CountedReads(monkeypatch), SimulatedPhone()
    for _ in range(5):
        periodic(cwmp, phone)
    assert counted.reads == 1


def test_every_change_of_a_policy_is_seen_at_the_next_inform(
    engine: Engine, cwmp: SessionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted, phone = CountedReads(monkeypatch), SimulatedPhone()
    periodic(cwmp, phone)
    before = revision(engine)

    with engine.begin() as conn:
        policies.add(conn, "hourly-uptime", events=["2 PERIODIC"], tasks_=[{"kind": "GetRPCMethods"}])
    periodic(cwmp, phone)
    assert queued_kinds(engine, phone) == ["GetRPCMethods"]

    with engine.begin() as conn:
        policies.update(conn, "hourly-uptime", {"tasks": [{"kind": "Reboot"}]})
    periodic(cwmp, phone)
    assert queued_kinds(engine, phone) == ["Reboot"]

    with engine.begin() as conn:
        policies.set_enabled(conn, "hourly-uptime", False)
    periodic(cwmp, phone)
    assert queued_kinds(engine, phone) == []

    with engine.begin() as conn:
        policies.set_enabled(conn, "hourly-uptime", True)
        policies.remove(conn, "hourly-uptime")
    periodic(cwmp, phone)
    assert queued_kinds(engine, phone) == []

    assert revision(engine) == before + 5  # add, update, disable, enable, remove
    assert counted.reads == 5  # the first Inform's, then one after each committed change


def test_a_change_rolled_back_leaves_no_trace_in_what_informs_see(
    engine: Engine, cwmp: SessionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Inform handled in a transaction that also changed policies, then rolled back, must not
    leave those policies cached under a revision a later, different change will take."""
    phone = SimulatedPhone()
    periodic(cwmp, phone)
    with engine.connect() as conn:
        policies.add(conn, "rolled-back", events=["2 PERIODIC"], tasks_=[{"kind": "Reboot"}])
        cwmp.handle(conn, None, phone.envelope(phone.inform(["2 PERIODIC"])), "192.0.2.10")
        conn.rollback()
    with engine.begin() as conn:  # the next change takes the same revision number
        policies.add(conn, "kept", events=["2 PERIODIC"], tasks_=[{"kind": "GetRPCMethods"}])
    periodic(cwmp, phone)
    assert queued_kinds(engine, phone) == ["GetRPCMethods"]


def open_by_creator(engine: Engine, phone: SimulatedPhone) -> dict[str, list[str]]:
    """The phone's open tasks' kinds by who queued them (``created_by``, as ``acs task show`` shows it)."""
    found: dict[str, list[str]] = {}
    for t in queue.list_tasks(engine, device_id=phone.device_id):
        if t.status in ("pending", "sent"):
            found.setdefault(t.created_by or "", []).append(t.kind)
    return found


def test_a_policy_named_like_another_with_a_colon_queues_its_own_tasks(
    engine: Engine, cwmp: SessionHandler
) -> None:
    """``office:night``'s open tasks are not ``office``'s: each policy queues its own (once the
    policy's name was read back from ``created_by``, and ``office`` stopped queuing)."""
    phone = SimulatedPhone()
    periodic(cwmp, phone)
    queued_kinds(engine, phone)  # the first contact's discovery, out of the way
    uptime = {"kind": "GetParameterValues", "args": {"ParameterNames": ["{root}DeviceInfo.UpTime"]}}
    with engine.begin() as conn:
        policies.add(conn, "office:night", events=["2 PERIODIC"], tasks_=[uptime])
        policies.add(conn, "office", events=["2 PERIODIC"], tasks_=[{"kind": "GetRPCMethods"}])

    periodic(cwmp, phone)
    assert open_by_creator(engine, phone) == {
        "policy:office": ["GetRPCMethods"],
        "policy:office:night": ["GetParameterValues"],
    }

    # office's task is done with, office:night's still open: office queues again, office:night not
    for task in queue.list_tasks(engine, device_id=phone.device_id):
        if task.origin_name == "office" and task.status in ("pending", "sent"):
            queue.cancel(engine, task.id)
    periodic(cwmp, phone)
    assert open_by_creator(engine, phone) == {
        "policy:office": ["GetRPCMethods"],
        "policy:office:night": ["GetParameterValues"],
    }
    tasks = queue.list_tasks(engine, device_id=phone.device_id)
    assert {(t.origin_kind, t.origin_name) for t in tasks if t.kind == "GetRPCMethods"} == {
        ("policy", "office")
    }
