"""What the store keeps for connection requests: the device's address and credentials, and the history."""

from __future__ import annotations

from datetime import timedelta

from acs.connreq.result import Attempt
from acs.cwmp import rpc
from acs.store import connection_requests, inventory
from acs.store.schema import devices, utcnow

MS = "Device.ManagementServer."
DEVICE = "00562B-CP-8841-3PCC-FCH1"


def add_device(conn) -> None:
    conn.execute(devices.insert().values(id=DEVICE, oui="00562B", serial_number="FCH1", created_at=utcnow()))


def pvs(name: str, value: str) -> rpc.ParameterValueStruct:
    return rpc.ParameterValueStruct(name, value, "string")


def test_values_read_from_the_device_update_its_address_but_never_the_write_only_password(engine):
    with engine.begin() as conn:
        add_device(conn)
        connection_requests.set_credentials(conn, DEVICE, "cr-user", "cr-s3cret")
        inventory.record_facts(
            conn,
            DEVICE,
            [
                pvs(f"{MS}UDPConnectionRequestAddress", "203.0.113.7:49152"),
                pvs(f"{MS}ConnectionRequestPassword", ""),  # as every CPE reads it back
            ],
            written=False,
        )
        target = connection_requests.target(conn, DEVICE)

    assert target is not None
    assert (target.udp_address, target.username, target.password) == (
        "203.0.113.7:49152",
        "cr-user",
        "cr-s3cret",
    )


def test_credentials_the_acs_wrote_are_the_ones_it_kicks_with(engine):
    with engine.begin() as conn:
        add_device(conn)
        inventory.record_facts(
            conn,
            DEVICE,
            [pvs(f"{MS}ConnectionRequestUsername", "u2"), pvs(f"{MS}ConnectionRequestPassword", "p2")],
            written=True,
        )
        target = connection_requests.target(conn, DEVICE)

    assert target is not None
    assert (target.username, target.password, target.last_requested_at) == ("u2", "p2", None)
    assert "p2" not in repr(target)


def test_the_history_is_newest_first_and_the_target_knows_the_latest_request(engine):
    now = utcnow()
    with engine.begin() as conn:
        add_device(conn)
        connection_requests.record(
            conn,
            DEVICE,
            [
                Attempt("http", "timed_out", "no answer within 5 s", now - timedelta(seconds=10), 5.0),
                Attempt("udp", "sent", "3 datagrams", now - timedelta(seconds=5), 0.75),
            ],
        )
        rows = connection_requests.history(conn, DEVICE)
        target = connection_requests.target(conn, DEVICE)

    assert [(r["method"], r["outcome"], r["detail"], r["elapsed"]) for r in rows] == [
        ("udp", "sent", "3 datagrams", 0.75),
        ("http", "timed_out", "no answer within 5 s", 5.0),
    ]
    assert target is not None
    assert abs(target.last_requested_at - (now - timedelta(seconds=5))) < timedelta(milliseconds=1)
