"""Cisco macros expand per device as the phone's own syntax says, and rules stay for the phone."""

from __future__ import annotations

import pytest

from acs.provisioning import flatprofile as fp
from acs.provisioning.macros import expand, expand_profile, variables

PHONE = {
    "mac": "000e08aabbcc",
    "serial_number": "88012BA01234",
    "product_class": "CP-7832-3PCC",
    "software_version": "sip7832.11-3-2MPP0001-609",
    "hardware_version": "1.88.1",
    "ip": "198.51.100.7",
}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("/$MA.cfg", "/000e08aabbcc.cfg"),
        ("/Cisco/$MAU.xml", "/Cisco/000E08AABBCC.xml"),
        ("$MAC", "00:0e:08:aa:bb:cc"),
        ("/$PSN.xml", "/7832.xml"),
        ("$PN $SN $HWVER", "CP-7832-3PCC 88012BA01234 1.88.1"),
        ("$SWVER", "sip7832.11-3-2MPP0001-609"),
        ("spa$(MAU)config.cfg", "spa000E08AABBCCconfig.cfg"),
        ("$(MAU:4)", "08AABBCC"),  # Cisco's examples: offset 4 to the end
        ("$(MAU:8:2)", "BB"),  # offset 8, two characters
        ("spa$STRANGE$MAU.cfg", "spa$STRANGE000E08AABBCC.cfg"),  # unknown names stay
        ("$$MAU", "$MAU"),  # no recursion
        ("$PRVTMR ge 600", "$PRVTMR ge 600"),  # the phone's own state
        ("$EXTIP", "198.51.100.7"),
        ("no macro", "no macro"),
    ],
)
def test_cisco_macro_syntax(text, expanded):
    assert expand(text, PHONE) == expanded


def test_gpp_registers_are_a_to_p_and_the_secret_ones_never_expand():
    names = variables(PHONE, {"GPP_A": "ABCDEF", "GPP_SA": "secret"})
    assert names["A"] == "ABCDEF"
    assert "SA" not in names
    assert (
        expand("$(A:2) $(A:2:3) [--key $SA]", PHONE, {"GPP_A": "ABCDEF", "GPP_SA": "k"})
        == "CDEF CDE [--key $SA]"
    )


def test_a_device_without_facts_leaves_its_macros_for_later():
    assert expand("/$MA/$PSN/$SN.xml", {"mac": None}) == "/$MA/$PSN/$SN.xml"


def test_expand_profile_leaves_the_elements_the_phone_expands_itself():
    profile = fp.parse(
        b"<flat-profile>"
        b"<Station_Name>desk-$MA</Station_Name>"
        b"<User_ID_1_>$(SN:6)</User_ID_1_>"
        b"<Profile_Rule>https://prov/$PSN/$MA.xml</Profile_Rule>"
        b"<Upgrade_Rule>($SWVER ne sip7832.12-0-1MPP-1)? http://fw/sip7832.12-0-1MPP-1.loads</Upgrade_Rule>"
        b"<GPP_B>$MA</GPP_B>"
        b"<Display_Name_1_>Lobby $B</Display_Name_1_>"
        b"</flat-profile>"
    )
    out = expand_profile(profile, PHONE).values()
    assert out["Station_Name"] == "desk-000e08aabbcc"
    assert out["User_ID_1_"] == "A01234"
    assert out["Profile_Rule"] == "https://prov/$PSN/$MA.xml"
    assert out["Upgrade_Rule"].startswith("($SWVER ne ")
    assert out["GPP_B"] == "$MA"
    assert out["Display_Name_1_"] == "Lobby $MA"  # $B is GPP_B as written: no recursion
