"""Bulk jobs: one command queues a task on many phones, picked by a CSV of MACs or by model."""

from __future__ import annotations

from pathlib import Path

from acs.cwmp import rpc
from tests.e2e.conftest import Acs, numbered_phone


def rebooted(acs: Acs, phones: list) -> list[str]:
    """Each phone has a session; the MACs of those the ACS sent a Reboot."""
    macs = []
    for phone in phones:
        log = acs.session(phone)
        if any(isinstance(r, rpc.Reboot) for r in log.requests):
            macs.append(phone.mac)
    return macs


def test_reboot_from_a_csv_of_macs_and_an_unknown_mac_queues_nothing(acs: Acs, tmp_path: Path) -> None:
    phones = [numbered_phone(i) for i in range(1, 5)]
    for phone in phones:
        acs.session(phone)
    chosen = phones[:3]
    # MACs as operators paste them: with colons, dashes, Cisco's dotted form, or bare
    a, b, c = (p.mac for p in chosen)
    notations = [
        ":".join(a[i : i + 2] for i in range(0, 12, 2)).upper(),
        "-".join(b[i : i + 2] for i in range(0, 12, 2)),
        f"{c[:4]}.{c[4:8]}.{c[8:]}",
    ]
    csv = tmp_path / "phones.csv"
    csv.write_text("mac,site\n" + "".join(f"{m},lobby\n" for m in [*notations, "00562bffffff"]))

    refused = acs.cli.run("task", "add", "reboot", "--csv", str(csv))

    assert refused.exit_code != 0
    assert "no device 00562bffffff; nothing was queued" in refused.output
    assert acs.cli.tasks() == []

    csv.write_text("mac,site\n" + "".join(f"{m},lobby\n" for m in notations))
    out = acs.cli("task", "add", "reboot", "--csv", str(csv))

    assert out.startswith("queued Reboot as 3 tasks")
    assert "for 3 devices (job " in out
    tasks = acs.cli.tasks()
    assert sorted(t["device_id"] for t in tasks) == sorted(p.device_id for p in chosen)
    (job,) = {t["job_id"] for t in tasks}
    assert job is not None and job in out
    assert rebooted(acs, phones) == [p.mac for p in chosen]
    assert {t["status"] for t in acs.cli.tasks("--job", job)} == {"sent"}
    rebooted(acs, phones)  # back with M Reboot
    assert {t["status"] for t in acs.cli.tasks("--job", job)} == {"done"}


def test_reboot_by_product_class(acs: Acs) -> None:
    phones = [numbered_phone(i, "CP-7841-3PCC" if i % 2 else "CP-8841-3PCC") for i in range(1, 7)]
    for phone in phones:
        acs.session(phone)

    missing = acs.cli.run("task", "add", "reboot", "--product-class", "CP-8861-3PCC")
    assert missing.exit_code != 0
    assert "no device matches; nothing was queued" in missing.output
    out = acs.cli("task", "add", "reboot", "--product-class", "CP-7841-3PCC")

    assert out.startswith("queued Reboot as 3 tasks")
    chosen = [p for p in phones if p.identity.model.product_class == "CP-7841-3PCC"]
    assert sorted(t["device_id"] for t in acs.cli.tasks()) == sorted(p.device_id for p in chosen)
    assert rebooted(acs, phones) == [p.mac for p in chosen]


def test_tags_pick_devices_for_tasks_and_policies(acs: Acs) -> None:
    phones = [numbered_phone(i) for i in range(1, 4)]
    for phone in phones:
        acs.session(phone)
    lobby, other, _ = phones
    assert "tags lobby, vip" in acs.cli("device", "tag", lobby.mac, "lobby", "vip")
    acs.cli("device", "tag", other.mac, "vip")
    assert "tags vip" in acs.cli("device", "untag", other.mac, "lobby")
    assert "tags (none)" in acs.cli("device", "untag", other.mac, "vip")
    listed = acs.cli.json("device", "list", "--tag", "lobby", "--json")
    assert [d["mac"] for d in listed] == [lobby.mac]

    acs.cli("task", "add", "reboot", "--tag", "lobby")
    acs.cli(
        "policy", "add", "lobby-interval", "--on", "2 PERIODIC", "--tag", "lobby", "--periodic-inform", "600"
    )
    assert rebooted(acs, phones) == [lobby.mac]
    assert lobby.value("Device.ManagementServer.PeriodicInformInterval") == 600
    assert other.value("Device.ManagementServer.PeriodicInformInterval") == 20
