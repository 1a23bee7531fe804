"""Property-based: schemathesis generates requests from /openapi.json, valid and invalid, and
sends them to a live ``acs serve`` whose database holds devices, tasks, a fault, a job and
policies; no answer may be a 5xx or break the document (status, content type, headers, body).

One server per backend (SQLite, PostgreSQL), for the whole module; examples are bounded so a
run stays within about a minute per backend.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from acs.cwmp import rpc
from acs.jobs import policies, queue
from acs.nbi import tokens
from acs.provisioning import store
from acs.store import create_engine, inventory, upgrade
from tests.conftest import BACKENDS, Postgres
from tests.nbi.conftest import inform_of, session
from tests.web.conftest import ACS, Server, start_server

EXAMPLES = 25
PROFILE = """<flat-profile>
  <Periodic_Inform_Interval ua="na">3600</Periodic_Inform_Interval>
  <Station_Name ua="rw">desk-$MA</Station_Name>
</flat-profile>
"""
#: flat profiles are text JSON Schema says nothing more of (format flat-profile): schemathesis draws them
#: from these, and sends random text only when it means to send bad input
FLAT_PROFILES = [
    PROFILE,
    "<flat-profile/>",
    '<device><flat-profile><Proxy_1_ ua="na">sip.example.net</Proxy_1_></flat-profile></device>',
]
schemathesis.openapi.format("flat-profile", st.sampled_from(FLAT_PROFILES))
schemathesis.openapi.media_type("application/xml", st.sampled_from([p.encode() for p in FLAT_PROFILES]))


def seed(url: str) -> str:
    """Devices that informed, tasks in every state, a fault, a job, policies, profiles; returns an admin
    token."""
    engine = create_engine(url)
    try:
        ids = [
            session(
                engine,
                inform_of(f"FCH{i:04d}", mac=f"00:56:2b:00:00:{i:02x}", events=("1 BOOT", "2 PERIODIC")),
            )
            for i in range(1, 6)
        ]
        with engine.begin() as conn:
            inventory.set_tags(conn, ids[0], add=["lab"])
            inventory.preregister(conn, mac="00:56:2b:00:01:00", tags=["floor-2"])
            policies.add(
                conn, "reboot-on-boot", events=["1 BOOT"], tasks_=[{"kind": "Reboot"}], match={"tag": "lab"}
            )
            queue.enqueue_job(conn, ids[2:], "GetRPCMethods", job_id="job000000001")
            store.save_profile(conn, "base", PROFILE)
            store.assign(conn, "base", "model", "CP-8841-3PCC")
            store.save_profile(
                conn, "lab-line", '<flat-profile><Password_1_ ua="na">s3cret</Password_1_></flat-profile>'
            )
            store.assign(conn, "lab-line", "tag", "lab")
            token, _ = tokens.create(conn, "schemathesis", "admin")
        queue.enqueue(engine, ids[0], "GetParameterValues", {"ParameterNames": ["Device.Nope."]})
        session(engine, inform_of("FCH0001"), respond=lambda _: rpc.Fault(9005, "Invalid parameter name"))
        queue.enqueue(engine, ids[1], "GetParameterValues", {"ParameterNames": ["Device.DeviceInfo."]})
        session(
            engine,
            inform_of("FCH0002"),
            respond=lambda _: rpc.GetParameterValuesResponse(
                [rpc.ParameterValueStruct("Device.DeviceInfo.ModelName", "CP-8841-3PCC", "string")]
            ),
        )
        queue.enqueue(engine, ids[1], "Reboot")
        return token
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'acs.db'}", None
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        name = postgres.create()
        url, drop = postgres.url(name), name
    try:
        upgrade(url)
        subprocess.run([ACS, "policy", "disable", "discovery", "--db", url], check=True, capture_output=True)
        token = seed(url)
        server = start_server(url, "--no-auth", discovery=True)
        try:
            yield server, token
        finally:
            server.stop()
        assert [line for line in server.log if "Traceback" in line or " ERROR " in line] == []
    finally:
        if drop is not None:
            request.getfixturevalue("postgres").drop(drop)


def test_no_5xx_and_every_answer_matches_the_document(live: tuple[Server, str]) -> None:
    """Every operation, with valid and with invalid input; all of schemathesis's checks."""
    server, token = live
    schema = schemathesis.openapi.from_url(f"{server.nbi_url}/openapi.json", timeout=30)
    # the token is the test's to send, not a parameter to generate (or to leave out as "invalid")
    # NUL: the document says no text carries one (test_api checks it gets 400)
    schema.config.generation.update(with_security_parameters=False, allow_x00=False)
    auth = {"Authorization": f"Bearer {token}"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=auth, timeout=30)

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (no parameters, or free text only)
                assert mode is schemathesis.GenerationMode.NEGATIVE
            except (Exception, BaseExceptionGroup) as e:  # every operation is tried; all failures reported
                failures[f"{operation.label} ({mode.value})"] = str(e)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_document_is_the_one_the_package_writes(live: tuple[Server, str]) -> None:
    import json
    import urllib.request

    from acs.nbi.openapi import document

    server, _ = live
    with urllib.request.urlopen(f"{server.nbi_url}/openapi.json", timeout=30) as response:
        assert json.loads(response.read()) == json.loads(json.dumps(document()))
    assert Path(ACS).exists()
