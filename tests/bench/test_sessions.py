"""bench/sessions.py and bench/loadgen.py run end to end and send what a phone sends (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from acs import cwmp
from acs.cwmp import rpc
from bench import loadgen

SESSIONS = Path(__file__).resolve().parents[2] / "bench" / "sessions.py"


def test_sessions_prints_the_figures_of_periodic_and_bootstrap_runs_without_errors(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SESSIONS),
            "--db=sqlite",
            "--workers=1",
            "--phones=3",
            "--sessions=20",
            "--bootstrap-sessions=3",
            "--devices=30",
            "--warmup=0.2",
            "--max-time=60",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("scenario"))
    for column in ("sessions/s", "p50 ms", "p99 ms", "errors", "RSS MB/worker", "loadgen CPU s"):
        assert column in header
    rows = {row["scenario"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"periodic", "bootstrap"}
    assert rows["periodic"]["sessions"] == 20 and rows["bootstrap"]["sessions"] == 3
    for row in rows.values():
        assert row["errors"] == 0 and row["notes"] == [], row
        assert row["rate"] > 0 and row["p50"] > 0 and row["p99"] >= row["p50"] and row["rss_mb"] > 0
    # discovery stored the simulated phone's whole tree for each new phone
    assert int(rows["bootstrap"]["params_per_device"]) > 500


def test_the_periodic_inform_is_phone_n_s_with_20_parameters():
    templates = loadgen.Templates()
    generator = loadgen.LoadGenerator(loadgen.Config(url="http://127.0.0.1:1/"), templates)
    pairs = loadgen.substitutions(42)
    personal = [loadgen.substitute(p, pairs) for p in templates.periodic]
    env = cwmp.parse(generator._inform(42, pairs, personal))
    inform = env.body
    assert isinstance(inform, rpc.Inform)
    assert inform.event_codes == ["2 PERIODIC"]
    assert f"{inform.DeviceId.OUI}-{inform.DeviceId.ProductClass}-{inform.DeviceId.SerialNumber}" == (
        loadgen.device_id(42)
    )
    values = {p.Name: p.Value for p in inform.ParameterList}
    assert len(values) == 20
    assert values["Device.Ethernet.Interface.1.MACAddress"] == "00:56:2b:00:00:2a"
    stored = {path: text for path, _, text in templates.periodic_values(42)}
    assert (
        stored["Device.ManagementServer.ConnectionRequestURL"]
        == values["Device.ManagementServer.ConnectionRequestURL"]
    )


def test_acs_requests_are_answered_with_their_id_and_the_phone_s_own_values():
    templates = loadgen.Templates()
    names = ["Device.DeviceInfo.SerialNumber", "Device.DeviceInfo.HostName"]
    pairs = loadgen.substitutions(7)
    for request_id in ("17", "18"):  # the second answer comes from the cache
        request = cwmp.serialize(
            cwmp.Envelope(rpc.GetParameterValues(names), ID=request_id, ns=cwmp.NAMESPACES["1.2"])
        )
        answer = cwmp.parse(templates.answer(request, pairs))
        assert request_id == answer.ID
        assert [(p.Name, p.Value) for p in answer.body.ParameterList] == [
            ("Device.DeviceInfo.SerialNumber", loadgen.serial(7)),
            ("Device.DeviceInfo.HostName", "SEP00562B000007"),
        ]
    reboot = cwmp.serialize(cwmp.Envelope(rpc.Reboot("k"), ID="5", ns=cwmp.NAMESPACES["1.2"]))
    assert isinstance(cwmp.parse(templates.answer(reboot, pairs)).body, rpc.RebootResponse)
