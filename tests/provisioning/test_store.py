"""Profiles in the store (SQLite and PostgreSQL): refused whole when malformed, composed per device, keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from acs.provisioning import store
from acs.provisioning.flatprofile import Problem
from acs.store import inventory
from acs.store.schema import devices, profiles

MAC = "00562b043615"
DEVICE = "00562B-CP-8841-3PCC-FCH2233A1B2"

DEFAULTS = b"""<flat-profile>
<Resync_Periodic ua="na">3600</Resync_Periodic>
<Proxy_1_ ua="na">sip.example.net</Proxy_1_>
<Station_Name ua="rw">$MA</Station_Name>
</flat-profile>"""


def add_device(
    conn, device_id=DEVICE, mac=MAC, product_class="CP-8841-3PCC", software="sip88xx.12-0-1MPP-1", tags=()
):
    oui, _, rest = device_id.partition("-")
    conn.execute(
        devices.insert().values(
            id=device_id,
            oui=oui,
            product_class=product_class,
            serial_number=rest.rpartition("-")[2],
            mac=mac,
            software_version=software,
            created_at=datetime.now(UTC),
        )
    )
    inventory.set_tags(conn, device_id, add=tags)


def test_a_profile_is_saved_and_read_back_as_written(engine):
    with engine.begin() as conn:
        saved = store.save_profile(conn, "base", DEFAULTS, description="all phones", create=True)
    assert saved.created and saved.warnings == []
    with engine.connect() as conn:
        row = store.get_profile(conn, "base")
    assert row["xml"] == DEFAULTS.decode()
    assert row["description"] == "all phones"
    assert row["assignments"] == []


def test_a_malformed_upload_is_refused_with_line_and_element_and_nothing_changes(engine):
    with engine.begin() as conn:
        store.save_profile(conn, "base", DEFAULTS)
        store.assign(conn, "base", "default")
        before = [dict(r) for r in conn.execute(sa.select(profiles)).mappings()]
    broken = (
        b'<flat-profile>\n<Proxy_1_ ua="na">new.example.net</Proxy_1_>\n'
        b'<User_ID_1_ ua="all">1001</User_ID_1_>\n</flat-profile>'
    )
    with pytest.raises(store.ProfileError) as refused, engine.begin() as conn:
        store.save_profile(conn, "base", broken)
    assert refused.value.problems == [
        Problem(3, "User_ID_1_", 'ua="all" is not allowed; use ua="na", "ro" or "rw"')
    ]
    assert 'line 3, <User_ID_1_>: ua="all"' in str(refused.value)
    with pytest.raises(store.ProfileError, match=r"line 2: not well-formed XML"), engine.begin() as conn:
        store.save_profile(conn, "other", b"<flat-profile>\n<Proxy_1_>x</Proxy_2_>\n</flat-profile>")
    with engine.connect() as conn:
        assert [dict(r) for r in conn.execute(sa.select(profiles)).mappings()] == before


def test_create_and_edit_say_when_the_name_is_taken_or_missing(engine):
    with engine.begin() as conn:
        store.save_profile(conn, "base", DEFAULTS, create=True)
        with pytest.raises(store.ProfileError, match="exists already"):
            store.save_profile(conn, "base", DEFAULTS, create=True)
        with pytest.raises(store.ProfileError, match="no profile 'nope'"):
            store.save_profile(conn, "nope", DEFAULTS, create=False)
        with pytest.raises(store.ProfileError, match="profile name 'a b'"):
            store.save_profile(conn, "a b", DEFAULTS)


def test_effective_profile_composes_default_model_tag_device_and_expands_macros(engine):
    with engine.begin() as conn:
        add_device(conn, tags=("office-a",))
        add_device(conn, "00562B-CP-7841-3PCC-OTHER", "00562b000001", "CP-7841-3PCC")
        store.save_profile(conn, "base", DEFAULTS)
        store.save_profile(
            conn, "m8841", b"<flat-profile><Resync_Periodic>86400</Resync_Periodic></flat-profile>"
        )
        store.save_profile(
            conn, "office", b"<flat-profile><Proxy_1_>office.example.net</Proxy_1_></flat-profile>"
        )
        store.save_profile(conn, "alice", b"<flat-profile><User_ID_1_>1001</User_ID_1_></flat-profile>")
        store.assign(conn, "base", "default")
        store.assign(conn, "m8841", "model", "CP-8841-3PCC")
        store.assign(conn, "office", "tag", "office-a")
        store.assign(conn, "alice", "device", DEVICE)
    with engine.connect() as conn:
        mine = store.effective_profile(conn, DEVICE)
        other = store.effective_profile(conn, "00562B-CP-7841-3PCC-OTHER")
        names = [layer.name for layer in store.layers(conn, DEVICE)]
    assert names == ["base", "m8841", "office", "alice"]
    assert mine.values() == {
        "Resync_Periodic": "86400",
        "Proxy_1_": "office.example.net",
        "Station_Name": MAC,
        "User_ID_1_": "1001",
    }
    assert mine.get("Proxy_1_").ua == "na"  # kept from the default layer
    assert other.values() == {
        "Resync_Periodic": "3600",
        "Proxy_1_": "sip.example.net",
        "Station_Name": "00562b000001",
    }


def test_priority_orders_profiles_within_a_level_and_unassign_removes_one(engine):
    with engine.begin() as conn:
        add_device(conn, tags=("a", "b"))
        store.save_profile(conn, "one", b"<flat-profile><GPP_A>1</GPP_A></flat-profile>")
        store.save_profile(conn, "two", b"<flat-profile><GPP_A>2</GPP_A></flat-profile>")
        store.assign(conn, "one", "tag", "b", priority=5)
        store.assign(conn, "two", "tag", "a")
        assert store.effective_profile(conn, DEVICE).values() == {"GPP_A": "1"}
        assert store.unassign(conn, "one", "tag", "b") is True
        assert store.unassign(conn, "one", "tag", "b") is False
        assert store.effective_profile(conn, DEVICE).values() == {"GPP_A": "2"}
        with pytest.raises(store.ProfileError, match="the tag level needs a tag"):
            store.assign(conn, "two", "tag", "")
        with pytest.raises(store.ProfileError, match="level 'group'"):
            store.assign(conn, "two", "group", "x")


def test_keys_per_device_win_over_tags_and_the_digest_follows_model_and_firmware(engine):
    with engine.begin() as conn:
        add_device(conn, tags=("office-a",), software="sip88xx.11-2-3MPP-308")
        assert store.profile_key(conn, DEVICE) is None
        store.set_key(conn, "tag", "office-a", passphrase="group-secret")
        key = store.profile_key(conn, DEVICE)
        assert (key.scope, key.passphrase, key.ikm, key.digest) == ("tag", "group-secret", None, "md5")
        assert "group-secret" not in repr(key)
        store.set_key(conn, "device", DEVICE, ikm="phone-ikm")
        key = store.profile_key(conn, DEVICE)
        assert (key.scope, key.passphrase, key.ikm) == ("device", None, "phone-ikm")
        store.set_digest(conn, "sha256", product_class="CP-8841-3PCC", software_prefix="sip88xx.11-2")
        assert store.profile_key(conn, DEVICE).digest == "sha256"
        store.set_digest(conn, "md5", software_prefix="sip88xx.11-2-3")  # longer prefix, but any model
        assert store.profile_key(conn, DEVICE).digest == "sha256"  # a model's own rule is more specific
        assert [k["aes128gcm"] for k in store.list_keys(conn)] == [True, False]
        store.set_key(conn, "device", DEVICE, ikm="")
        assert store.profile_key(conn, DEVICE).scope == "tag"


@pytest.mark.parametrize(
    ("version", "digest"),
    [
        ("sip88xx.11-2-3MPP-308", "md5"),
        ("sip7832.11-3-1MPP-376", "sha256"),
        ("sip78xx.12-0-1MPP-1", "sha256"),
        ("11.0.1", "md5"),
        ("", "sha256"),
        ("weird", "sha256"),
    ],
)
def test_the_default_digest_is_md5_before_11_3_1(version, digest):
    assert store.default_digest(version) == digest
