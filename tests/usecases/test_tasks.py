"""Queueing an RPC on devices, as every door (CLI, REST, SOAP) now does it: on a real store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from acs.jobs import queue
from acs.store import devices, utcnow
from acs.usecases import tasks

PHONE = "00562B-CP-8841-3PCC-FCH1234ABCD"
OTHER = "00562B-CP-7841-3PCC-FCH5678EFGH"
TWIN = "00562B-CP-6841-3PCC-FCH9999ZZZZ"
SHARED_MAC = "00:11:22:33:44:55"
PARAMS = {"ParameterNames": ["Device.DeviceInfo."]}


@pytest.fixture
def phones(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        for device_id, mac in (
            (PHONE, None),
            (OTHER, SHARED_MAC.replace(":", "")),
            (TWIN, SHARED_MAC.replace(":", "")),
        ):
            oui, product_class, serial = (
                device_id.split("-")[0],
                device_id.split("-")[2],
                device_id.rsplit("-", 1)[1],
            )
            conn.execute(
                sa.insert(devices).values(
                    id=device_id, oui=oui, product_class=product_class, serial_number=serial, mac=mac
                )
            )
    return engine


def _queue(
    engine: sa.Engine,
    devices_: tasks.Devices,
    kind: str = "GetParameterValues",
    args: dict[str, Any] | None = PARAMS,
    **options: Any,
) -> tasks.Queued:
    with engine.begin() as conn:
        return tasks.queue_task(conn, kind, args, devices_, tasks.Options(**options))


def test_one_named_device_is_a_plain_task_with_its_options(phones: sa.Engine) -> None:
    expires = utcnow() + timedelta(hours=1)
    done = _queue(
        phones,
        tasks.OneDevice("FCH1234ABCD"),
        max_attempts=5,
        expires_at=expires,
        origin=queue.Origin("api", "alice"),
    )
    assert done.job_id is None and done.device_ids == [PHONE] and len(done.task_ids) == 1
    task = queue.get(phones, done.task_ids[0])
    assert (task.device_id, task.kind, task.job_id, task.max_attempts, task.created_by) == (
        PHONE,
        "GetParameterValues",
        None,
        5,
        "api:alice",
    )
    assert task.expires_at == expires


def test_a_selection_is_one_job_even_when_it_matches_one_device(phones: sa.Engine) -> None:
    one = _queue(phones, tasks.DeviceSelection(keys=("FCH1234ABCD",)))
    assert one.job_id is not None and one.device_ids == [PHONE]
    many = _queue(phones, tasks.DeviceSelection(filters={"oui": "00562B"}))
    assert many.job_id not in (None, one.job_id)
    assert sorted(many.device_ids) == sorted([PHONE, OTHER, TWIN])
    assert {queue.get(phones, i).job_id for i in many.task_ids} == {many.job_id}
    assert queue.job_progress(phones, many.job_id)["total"] == 3


def test_an_unknown_device_queues_nothing(phones: sa.Engine) -> None:
    with pytest.raises(tasks.UnknownDevice) as one:
        _queue(phones, tasks.OneDevice("NOSUCH"))
    assert one.value.keys == ["NOSUCH"]
    with pytest.raises(tasks.UnknownDevice) as some:
        _queue(phones, tasks.DeviceSelection(keys=("FCH1234ABCD", "NOSUCH")))
    assert some.value.keys == ["NOSUCH"] and "nothing was queued" in str(some.value)
    assert queue.list_tasks(phones) == []


def test_a_selection_matching_nothing_queues_nothing(phones: sa.Engine) -> None:
    with pytest.raises(tasks.NoDeviceMatches):
        _queue(phones, tasks.DeviceSelection(filters={"oui": "FFFFFF"}))
    assert queue.list_tasks(phones) == []


def test_a_shared_mac_is_ambiguous_by_either_door(phones: sa.Engine) -> None:
    for devices_ in (tasks.OneDevice(SHARED_MAC), tasks.DeviceSelection(keys=(SHARED_MAC,))):
        with pytest.raises(tasks.AmbiguousDevice) as e:
            _queue(phones, devices_)
        assert e.value.device_ids == sorted([OTHER, TWIN])
    assert queue.list_tasks(phones) == []


def test_bad_arguments_queue_nothing_on_any_device(phones: sa.Engine) -> None:
    with pytest.raises(tasks.BadArguments) as e:
        _queue(phones, tasks.DeviceSelection(filters={"oui": "00562B"}), args={"Nonsense": 1})
    assert e.value.kind == "GetParameterValues" and not e.value.about_complete_within
    with pytest.raises(tasks.BadArguments) as late:
        _queue(phones, tasks.OneDevice(PHONE), complete_within=60)
    assert late.value.about_complete_within
    assert queue.list_tasks(phones) == []
