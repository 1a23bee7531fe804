"""``acs profile`` as an operator types it (SQLite and PostgreSQL): files in, problems out, keys hidden."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from acs.cli import main
from acs.provisioning import flatprofile, store
from acs.store import create_engine
from tests.provisioning.test_store import DEVICE, MAC, add_device

BASE = (
    b'<flat-profile>\n<Proxy_1_ ua="na">sip.example.net</Proxy_1_>\n'
    b"<Station_Name>$MA</Station_Name>\n</flat-profile>\n"
)


@pytest.fixture
def acs(db_url):
    engine = create_engine(db_url)
    with engine.begin() as conn:
        add_device(conn, tags=("office-a",))
    engine.dispose()

    def run(*args: str, input: str | bytes | None = None, code: int = 0):
        result = CliRunner().invoke(main, [*args, "--db", db_url], input=input, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return run


def test_create_assign_show_and_list(acs, tmp_path: Path):
    (tmp_path / "base.xml").write_bytes(BASE)
    assert "profile base created" in acs("profile", "create", "base", str(tmp_path / "base.xml")).stdout
    assert (
        "profile base applies to tag office-a" in acs("profile", "assign", "base", "--tag", "office-a").stdout
    )
    rows = json.loads(acs("profile", "list", "--json").stdout)
    assert [(r["name"], r["assignments"]) for r in rows] == [
        ("base", [{"level": "tag", "match": "office-a", "priority": 0}])
    ]
    assert "tag office-a" in acs("profile", "list").stdout
    shown = acs("profile", "show", "base").stdout
    assert shown.startswith("# applies to: tag office-a\n<flat-profile>")
    effective = acs("profile", "show", "--device", MAC).stdout
    assert f"<!-- {DEVICE}: layers base (tag office-a) -->" in effective
    assert flatprofile.parse(effective.encode()).values() == {
        "Proxy_1_": "sip.example.net",
        "Station_Name": MAC,
    }
    # a device that has never informed: nothing to push, the profile waits for its resync
    diff = acs("profile", "diff", MAC).stdout
    assert "has no stored tree" in diff
    assert "no longer applies" in acs("profile", "unassign", "base", "--tag", "office-a").stdout
    acs("profile", "unassign", "base", "--tag", "office-a", code=1)
    assert "deleted" in acs("profile", "delete", "base").stdout


def test_a_refused_profile_lists_file_line_and_element_on_stderr(acs, tmp_path: Path):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(
        b"<flat-profile>\n<Proxy_1_>a</Proxy_1_>\n<Dial_Plan_1_>(<b>9</b>xx)</Dial_Plan_1_>\n</flat-profile>\n"
    )
    result = acs("profile", "create", "bad", str(bad), code=1)
    assert f"{bad}:3: <Dial_Plan_1_> error: contains <b>" in result.stderr
    broken = tmp_path / "broken.xml"
    broken.write_bytes(
        b"<flat-profile>\n<Proxy_1_>a</Proxy_1_>\n<Dial_Plan_1_>(<9:>xx)</Dial_Plan_1_>\n</flat-profile>\n"
    )
    result = acs("profile", "create", "broken", str(broken), code=1)
    assert f"{broken}:3: error: not well-formed XML" in result.stderr
    assert "nothing changed" in result.stderr
    assert json.loads(acs("profile", "list", "--json").stdout) == []
    warned = tmp_path / "warned.xml"
    warned.write_bytes(b"<flat-profile>\n<Prxy_2_>b</Prxy_2_>\n</flat-profile>\n")
    result = acs("profile", "create", "warned", str(warned))
    assert f"{warned}:2: <Prxy_2_> warning: not a known MPP parameter name" in result.stderr
    assert "profile warned created" in result.stdout
    result = acs("profile", "create", "stdin", "-", input=BASE)
    assert "profile stdin created" in result.stdout
    assert "need" in acs("profile", "assign", "stdin", "--tag", "", code=1).output


def test_keys_are_prompted_never_echoed_never_logged(acs, db_url, caplog):
    caplog.set_level(logging.DEBUG)
    result = acs(
        "profile",
        "key",
        "set",
        "--device",
        MAC,
        "--cbc",
        "--gcm",
        input="pass-1234\npass-1234\nikm-5678\nikm-5678\n",
    )
    assert "AES-256-CBC and aes128gcm key set for device " + DEVICE in result.stdout
    listed = acs("profile", "key", "list").stdout + acs("profile", "key", "list", "--json").stdout
    assert "pass-1234" not in result.stdout + listed and "ikm-5678" not in result.stdout + listed
    assert "pass-1234" not in caplog.text and "ikm-5678" not in caplog.text
    acs("profile", "key", "digest", "md5", "--model", "CP-8841-3PCC")
    assert "CP-8841-3PCC" in acs("profile", "key", "list").stdout
    engine = create_engine(db_url)
    with engine.connect() as conn:
        key = store.profile_key(conn, DEVICE)
    engine.dispose()
    assert (key.passphrase, key.ikm, key.digest) == ("pass-1234", "ikm-5678", "md5")
    acs("profile", "key", "set", "--device", MAC, "--cbc", input="a\nb\n", code=1)  # confirmation differs
    acs("profile", "key", "clear", "--device", MAC)
    assert json.loads(acs("profile", "key", "list", "--json").stdout)["keys"] == []
