"""``acs token``: tokens are printed once, listed by name and role only, and revoked."""

from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner

from acs.cli import main
from acs.nbi import tokens
from acs.store import inventory
from acs.store.schema import api_tokens
from tests.nbi.conftest import inform_of, session


def acs(db_url: str, *args: str, code: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(main, [*args, "--db", db_url], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


def test_token_create_prints_the_token_once_and_stores_its_hash(db_url, engine):
    out, err = acs(db_url, "token", "create", "--role", "operator", "--name", "oss")
    token = out.strip()
    assert token.startswith("acs_") and len(token) > 40
    assert "oss (operator" in err and "cannot be shown again" in err
    with engine.connect() as conn:
        (row,) = conn.execute(sa.select(api_tokens)).mappings()
    assert row["token_hash"] == tokens.hash_token(token) and token not in str(dict(row))
    with engine.begin() as conn:
        assert tokens.authenticate(conn, token)["role"] == "operator"

    listed, _ = acs(db_url, "token", "list")
    assert "oss" in listed and "operator" in listed and token not in listed
    (shown,) = json.loads(acs(db_url, "token", "list", "--json")[0])
    assert set(shown) == {"id", "name", "role", "created_at", "last_used_at"} and shown["last_used_at"]

    _, err = acs(db_url, "token", "create", "--role", "read", "--name", "oss", code=1)
    assert "exists already" in err
    _, err = acs(db_url, "token", "create", "--role", "root", "--name", "x", code=2)
    assert "read" in err and "admin" in err

    assert "revoked" in acs(db_url, "token", "revoke", "oss")[0]
    with engine.begin() as conn:
        assert tokens.authenticate(conn, token) is None
    _, err = acs(db_url, "token", "revoke", "oss", code=1)
    assert "no token 'oss'" in err


def test_device_list_and_show_json_never_carry_the_device_passwords(db_url, engine):
    dev = session(engine, inform_of("FCH0001", mac="00:56:2b:00:00:01"))
    with engine.begin() as conn:
        inventory.set_credentials(conn, dev, "phone1", "s3cret")
    (listed,) = json.loads(acs(db_url, "device", "list", "--json")[0])
    shown = json.loads(acs(db_url, "device", "show", dev, "--json")[0])
    for device in (listed, shown):
        assert device["id"] == dev and device["username"] == "phone1"
        assert "password" not in device and "connection_request_password" not in device
    assert listed == {k: v for k, v in shown.items() if k in listed}
