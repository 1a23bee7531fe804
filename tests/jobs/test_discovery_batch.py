"""How many names a discovery GetParameterValues asks for: per policy, per model, per device.

A C agent seen in the field crashes on a GetParameterValues of more than 31 names, and again at
each retry. The built-in discovery asks 32 at most; a policy sets its ``batch`` and a batch per
model; a device whose session died right after a discovery batch gets half as many, down to 1,
remembered for it (SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.jobs import policies, queue
from acs.store.schema import devices, sessions
from acs.testing import SimulatedPhone
from acs.testing.phone import ConnectionDropped
from tests.provisioning.inprocess import phone_session

PHONE = "00562B-CP-8841-3PCC-FCH1234ABCD"
VALUES = queue.Origin("policy", "discovery", "values")
DEVICE = {"id": PHONE, "oui": "00562B", "product_class": "CP-8841-3PCC"}


@pytest.mark.parametrize(
    ("models", "batch"),
    [
        ([], 20),
        ([{"product_class": "CP-7841-3PCC", "batch": 5}], 20),
        ([{"product_class": "CP-8841-3PCC", "batch": 8}], 8),
        ([{"product_class": "CP-8841-3PCC", "oui": "00562b", "batch": 4}], 4),
        ([{"product_class": "CP-8841-3PCC", "oui": "001122", "batch": 4}], 20),
        (
            [
                {"product_class": "CP-8841-3PCC", "batch": 8},
                {"product_class": "CP-8841-3PCC", "oui": "00562B", "batch": 4},
            ],
            4,
        ),
    ],
)
def test_a_model_s_batch_wins_over_the_policy_s(models: list[dict[str, Any]], batch: int) -> None:
    assert policies.discovery_batch({"batch": 20, "models": models}, DEVICE) == batch


def test_the_default_batch_is_no_larger_than_32() -> None:
    assert policies.discovery_batch({}, DEVICE) == policies.DISCOVERY_BATCH <= 32


REFUSED: list[dict[str, Any]] = [
    {"batch": 0},
    {"batch": True},
    {"batch": 10, "depth": 2},
    {"models": {"CP-8841-3PCC": 8}},
    {"models": [{"product_class": "CP-8841-3PCC"}]},
    {"models": [{"product_class": " ", "batch": 8}]},
    {"models": [{"product_class": "CP-8841-3PCC", "batch": 8, "serial": "x"}]},
    {
        "models": [
            {"product_class": "CP-8841-3PCC", "batch": 8},
            {"product_class": "CP-8841-3PCC", "batch": 4},
        ]
    },
]


def test_a_discover_with_models_is_taken_and_one_that_cannot_work_refused() -> None:
    args = {"batch": 24, "models": [{"product_class": "CP-8841-3PCC", "oui": "00562B", "batch": 8}]}
    assert policies.check_tasks([{"kind": "Discover", "args": args}]) == [{"kind": "Discover", "args": args}]
    for refused in REFUSED:
        with pytest.raises(policies.PolicyError, match="Discover"):
            policies.check_tasks([{"kind": "Discover", "args": refused}])


def test_set_discovery_batch_for_the_policy_and_for_a_model(engine: Engine) -> None:
    with engine.begin() as conn:
        policies.set_discovery_batch(conn, "discovery", 24)
        policies.set_discovery_batch(conn, "discovery", 8, product_class="CP-8841-3PCC")
        changed = policies.set_discovery_batch(
            conn, "discovery", 4, product_class="CP-8841-3PCC", oui="00562b"
        )
    args = {"batch": 24, "models": [{"product_class": "CP-8841-3PCC", "batch": 8}]}
    args["models"].append({"product_class": "CP-8841-3PCC", "oui": "00562B", "batch": 4})
    assert changed["tasks"] == [{"kind": "Discover", "args": args}]
    assert policies.describe(changed) == (
        "on NEW, 0 BOOTSTRAP: Discover (batch 24; CP-8841-3PCC: 8; 00562B/CP-8841-3PCC: 4)"
    )

    with engine.begin() as conn:
        changed = policies.set_discovery_batch(conn, "discovery", None, product_class="CP-8841-3PCC")
        changed = policies.set_discovery_batch(
            conn, "discovery", None, product_class="CP-8841-3PCC", oui="00562B"
        )
    assert changed["tasks"] == [{"kind": "Discover", "args": {"batch": 24}}]

    with engine.begin() as conn:
        policies.add(conn, "boot", events=["1 BOOT"], tasks_=[{"kind": "GetRPCMethods"}])
        with pytest.raises(policies.PolicyError, match="no Discover task"):
            policies.set_discovery_batch(conn, "boot", 8)


def test_a_model_s_batch_is_what_its_discovery_asks(engine: Engine) -> None:
    phone = SimulatedPhone()
    with engine.begin() as conn:
        policies.set_discovery_batch(conn, "discovery", 8, product_class=phone.identity.model.product_class)

    sent = phone_session(engine, phone)

    batches = [len(r.ParameterNames) for r in sent if isinstance(r, queue.rpc.GetParameterValues)]
    assert batches[:-1] == [8] * (len(batches) - 1) and 1 <= batches[-1] <= 8
    (names,) = queue.list_tasks(engine, device_id=phone.device_id, kind="GetParameterNames")
    assert names.created_by == "policy:discovery:discover:8"


# --- a session that died on a batch ------------------------------------------------------------


@pytest.fixture
def phone(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(sa.insert(devices).values(id=PHONE, oui="00562B", serial_number="FCH1234ABCD"))
    return engine


def batches(engine: Engine, names: list[str], size: int) -> list[int]:
    return [
        queue.enqueue(
            engine, PHONE, "GetParameterValues", {"ParameterNames": names[i : i + size]}, origin=VALUES
        )
        for i in range(0, len(names), size)
    ]


def dies_on_the_next(engine: Engine, session: str) -> tuple[queue.Task, int | None]:
    """The next batch is sent in ``session``, which dies; the device's next session begins."""
    with engine.begin() as conn:
        conn.execute(sa.insert(sessions).values(id=session, device_id=PHONE))
    sent = queue.claim_next(engine, PHONE, session)
    assert sent is not None
    with engine.begin() as conn:
        orphans = queue.requeue_orphans(conn, PHONE, None)
        return sent, policies.after_orphans(conn, PHONE, orphans)


def open_batches(engine: Engine) -> list[tuple[list[str], int]]:
    found = queue.list_tasks(engine, device_id=PHONE, kind="GetParameterValues", status="pending")
    found.reverse()
    return [(t.args["ParameterNames"], t.attempts) for t in found]


def remembered(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(devices.c.discovery_batch).where(devices.c.id == PHONE)).scalar_one()


def test_a_batch_that_died_is_halved_and_the_rest_split_again_in_order(phone: Engine) -> None:
    names = [f"Device.P{i:02d}" for i in range(70)]
    batches(phone, names, 32)

    sent, batch = dies_on_the_next(phone, "s1")

    assert (len(sent.args["ParameterNames"]), batch, remembered(phone)) == (32, 16, 16)
    assert open_batches(phone) == [(names[i : i + 16], 0) for i in range(0, 70, 16)]


def test_halving_goes_down_to_1_and_no_further(phone: Engine) -> None:
    names = [f"Device.P{i}" for i in range(4)]
    batches(phone, names, 4)

    assert [dies_on_the_next(phone, f"s{n}")[1] for n in range(1, 4)] == [2, 1, None]

    assert remembered(phone) == 1
    # the 1-name batch that died is sent again as it was, its attempts counted, until it is given up
    assert open_batches(phone)[0] == (["Device.P0"], 1)


def test_a_discovery_after_a_death_asks_the_batch_remembered(phone: Engine) -> None:
    with phone.begin() as conn:
        conn.execute(devices.update().values(discovery_batch=5))
    names_task = queue.enqueue(
        phone,
        PHONE,
        "GetParameterNames",
        {"ParameterPath": "Device.", "NextLevel": False},
        origin=queue.Origin("policy", "discovery", "discover", 32),
    )
    with phone.begin() as conn:
        task = queue.get(conn, names_task)
        policies.after_names(conn, task, [f"Device.P{i}" for i in range(12)])

    assert [len(n) for n, _ in open_batches(phone)] == [5, 5, 2]


def test_a_phone_that_crashes_on_32_names_is_discovered_in_its_next_session(engine: Engine) -> None:
    phone = SimulatedPhone(crash_above=31)

    with pytest.raises(ConnectionDropped):
        phone_session(engine, phone)  # GetParameterNames, then 32 names: the agent crashes

    sent = phone_session(engine, phone)

    sizes = [len(r.ParameterNames) for r in sent if isinstance(r, queue.rpc.GetParameterValues)]
    assert max(sizes) == 16 and phone.crashes == 1
    with engine.connect() as conn:
        stored = {
            r.path for r in conn.execute(sa.text("SELECT path FROM parameters WHERE path NOT LIKE '%.'"))
        }
    assert stored == {path for path, _ in phone.model.parameters("Device.")}
    assert remembered_of(engine, phone.device_id) == 16


def remembered_of(engine: Engine, device_id: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(devices.c.discovery_batch).where(devices.c.id == device_id)
        ).scalar_one()
