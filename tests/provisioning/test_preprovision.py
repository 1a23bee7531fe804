"""``acs device import``: devices created from an inventory CSV before they first connect."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from acs.cli import main
from acs.provisioning import store
from acs.provisioning.preprovision import InventoryError, import_inventory, read_inventory
from acs.store import device_tags, devices, inventory


def fleet_csv(count: int, *, bad: dict[int, str] | None = None) -> str:
    """An inventory of ``count`` CP-8841 phones; ``bad`` replaces the MAC of some rows (0-based)."""
    lines = ["mac,serial,model,group,username,password"]
    for i in range(count):
        mac = (bad or {}).get(i, f"00562b{i:06x}")
        creds = f"phone{i},pw{i}" if i % 10 == 0 else ","
        lines.append(f"{mac},FCH{i:07d},CP-8841-3PCC,{'floor' + str(i % 3)},{creds}")
    return "\n".join(lines) + "\n"


def test_columns_in_any_order_spelling_and_separator():
    text = (
        "\ufeff# scanned at the warehouse\n"
        "\n"
        "Serial Number;MAC Address;Product Class;Tags\n"
        "FCH2233A1B2;00:56:2B:04:36:15;CP-8841-3PCC;sales floor2\n"
        "FCH2233A1B3;0056.2b04.3616;CP-7841-3PCC\n"  # trailing optional field left out
    )
    rows, problems = read_inventory(text)
    assert problems == []
    assert [(r.line, r.device_id, r.mac, r.groups) for r in rows] == [
        (4, "00562B-CP-8841-3PCC-FCH2233A1B2", "00562b043615", ("sales", "floor2")),
        (5, "00562B-CP-7841-3PCC-FCH2233A1B3", "00562b043616", ()),
    ]


def test_bad_rows_are_named_by_line_and_reason():
    text = (
        "mac,serial,model,oui,username,password\n"
        "00562b043615,FCH1,CP-8841-3PCC,,,\n"
        "zz,FCH2,CP-8841-3PCC,,,\n"
        "00562b043617,FCH 3,CP-8841-3PCC,,,\n"
        "00562b043618,FCH4,CP-8841-3PCC,XYZ,,\n"
        "00562b043619,FCH5,CP-8841-3PCC,,alice,\n"
        "00:56:2b:04:36:15,FCH6,CP-8841-3PCC,,,\n"
        "00562b04361a,FCH7\n"
        "00562b04361b,FCH8,CP-8841-3PCC,00562B,bob,pw\n"
        "00562b04361c,FCH9,CP-8841-3PCC,,bob,pw\n"
    )
    rows, problems = read_inventory(text)
    assert [r.line for r in rows] == [2, 9]
    assert [(p.line, p.reason) for p in problems] == [
        (3, "mac 'zz' is not a MAC address (12 hex digits, any notation)"),
        (4, "serial 'FCH 3' must be 1 to 64 letters, digits or ._:/+- (no spaces)"),
        (5, "oui 'XYZ' must be 6 hex digits (the manufacturer's, as the Inform gives it)"),
        (6, "give username and password together, or neither"),
        (7, "MAC 00562b043615 is also on line 2"),
        (8, "2 fields where the header has 6"),
        (10, "user name bob is also on line 9"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("mac,model\n00562b043615,CP-8841-3PCC\n", "no serial column"),
        ("mac,serial,model,colour\n", "unknown column 'colour'"),
    ],
)
def test_a_file_without_a_usable_header_is_refused(text, message):
    with pytest.raises(InventoryError, match=message):
        read_inventory(text)


def _devices(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(sa.select(devices)).mappings()}


def test_import_creates_devices_with_their_inform_id(engine):
    rows, _ = read_inventory(
        "mac,serial,model,group,username,password\n"
        "00562b043615,FCH2233A1B2,CP-8841-3PCC,sales;vip,alice,s3cret\n"
        "c4c603731f67,FCH9,CP-7841-3PCC,,,\n"
    )
    report = import_inventory(engine, rows)

    assert (report.created, report.updated, report.problems) == (2, 0, [])
    with engine.connect() as conn:
        phone = inventory.get_device(conn, "00562b043615")
        other = inventory.get_device(conn, "FCH9")
    assert phone is not None and other is not None
    assert phone["id"] == "00562B-CP-8841-3PCC-FCH2233A1B2"
    assert (phone["oui"], phone["product_class"], phone["serial_number"]) == (
        "00562B",
        "CP-8841-3PCC",
        "FCH2233A1B2",
    )
    assert phone["tags"] == ["sales", "vip"]
    assert (phone["username"], phone["password"].reveal()) == ("alice", "s3cret")
    assert phone["last_inform"] is None  # known, never seen
    assert other["id"] == "C4C603-CP-7841-3PCC-FCH9"


def test_importing_again_updates_the_same_devices(engine):
    first = "mac,serial,model,group,username,password\n00562b043615,FCH1,CP-8841-3PCC,sales,alice,one\n"
    import_inventory(engine, read_inventory(first)[0])
    again = "mac,serial,model,group\n00562b043615,FCH1,CP-8841-3PCC,support\n"

    report = import_inventory(engine, read_inventory(again)[0])

    assert (report.created, report.updated) == (0, 1)
    (device,) = _devices(engine).values()
    assert (device["username"], device["password"].reveal()) == ("alice", "one")  # kept: the file gave none
    with engine.connect() as conn:
        tags = sorted(conn.execute(sa.select(device_tags.c.tag)).scalars())
    assert tags == ["sales", "support"]


def test_rows_that_clash_with_other_devices_are_refused_and_the_rest_kept(engine):
    with engine.begin() as conn:
        conn.execute(
            devices.insert().values(oui="00562B"),
            [
                {
                    "id": "00562B-CP-8841-3PCC-OLD",
                    "serial_number": "OLD",
                    "mac": "00562b043615",
                    "username": None,
                },
                {"id": "00562B-CP-8841-3PCC-X", "serial_number": "X", "mac": None, "username": "alice"},
            ],
        )
    rows, _ = read_inventory(
        "mac,serial,model,username,password\n"
        "00562b043615,NEW,CP-8841-3PCC,,\n"
        "00562b043616,FCH2,CP-8841-3PCC,alice,pw\n"
        "00562b043617,FCH3,CP-8841-3PCC,,\n"
    )

    report = import_inventory(engine, rows)

    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "MAC 00562b043615 belongs to device 00562B-CP-8841-3PCC-OLD already"),
        (3, "user name 'alice' is already used by device 00562B-CP-8841-3PCC-X"),
    ]
    assert report.created == 1
    assert "00562B-CP-8841-3PCC-FCH3" in _devices(engine)


def test_cli_imports_thousands_with_a_progress_bar_and_reports_bad_lines(db_url, tmp_path):
    bad = {17: "not-a-mac", 4321: "00562b00"}
    path = tmp_path / "inventory.csv"
    path.write_text(fleet_csv(5000, bad=bad))

    result = CliRunner().invoke(main, ["device", "import", str(path), "--db", db_url])

    assert result.exit_code == 1, result.output  # some rows refused
    assert result.stdout == "4998 devices created, 0 updated, 2 rows refused\n"
    assert "importing" in result.stderr  # the progress bar
    assert f"{path}:19: mac 'not-a-mac' is not a MAC address" in result.stderr  # row 17 is on line 19
    assert f"{path}:4323: mac '00562b00' is not a MAC address" in result.stderr
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(devices)).scalar() == 4998
            assert conn.execute(sa.select(sa.func.count()).select_from(device_tags)).scalar() == 4998
            assert inventory.get_device(conn, "FCH0000100")["username"] == "phone100"
    finally:
        engine.dispose()

    again = CliRunner().invoke(main, ["device", "import", str(path), "--db", db_url, "--json"])
    assert again.exit_code == 1
    assert '"created": 0' in again.stdout and '"updated": 4998' in again.stdout


def test_cli_refuses_a_file_it_cannot_read(db_url, tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text("mac;model\n")
    result = CliRunner().invoke(main, ["device", "import", str(path), "--db", db_url])
    assert result.exit_code == 1
    assert "no serial column in the header" in result.stderr
    path.write_bytes(b"mac,serial,model\n\xff\xfe\n")
    result = CliRunner().invoke(main, ["device", "import", str(path), "--db", db_url])
    assert result.exit_code == 1
    assert "not UTF-8 text" in result.stderr


def test_a_rows_profile_becomes_the_devices_own(engine):
    with engine.begin() as conn:
        store.save_profile(conn, "alice", "<flat-profile><User_ID_1_>1001</User_ID_1_></flat-profile>")
        store.save_profile(conn, "bob", "<flat-profile><User_ID_1_>1002</User_ID_1_></flat-profile>")
    header = "mac,serial,model,profile\n"
    report = import_inventory(
        engine,
        read_inventory(
            header + "00562b043615,FCH1,CP-8841-3PCC,alice\n00562b043616,FCH2,CP-8841-3PCC,carol\n"
        )[0],
    )
    assert [(p.line, p.reason) for p in report.problems] == [
        (3, "no profile 'carol' (see `acs profile list`)")
    ]
    with engine.connect() as conn:
        assert store.effective_profile(conn, "00562B-CP-8841-3PCC-FCH1").values() == {"User_ID_1_": "1001"}

    import_inventory(engine, read_inventory(header + "00562b043615,FCH1,CP-8841-3PCC,bob\n")[0])

    with engine.connect() as conn:  # bob replaces alice: the inventory says which profile is the phone's
        assert store.effective_profile(conn, "00562B-CP-8841-3PCC-FCH1").values() == {"User_ID_1_": "1002"}
