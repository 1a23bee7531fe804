"""The file names phones ask for, as their Profile_Rule macros expand, name the right phone."""

from __future__ import annotations

import pytest

from acs.provisioning.paths import ProfileName, parse_profile_path


@pytest.mark.parametrize(
    ("path", "mac", "key"),
    [
        ("/00562b043615.cfg", "00562b043615", None),  # /$MA.cfg
        ("/00562B043615.cfg", "00562b043615", None),  # /$MAU.cfg
        ("/Cisco/00562b043615.cfg", "00562b043615", None),  # the DNS SRV layout, /Cisco/$MA.cfg
        ("/prov/cisco/00562b043615.xml?model=8841", "00562b043615", None),
        ("/spa00562b043615.cfg", "00562b043615", None),  # SPA deployments, spa$MA.cfg
        ("/SEP00562B043615.cnf.xml", "00562b043615", None),
        ("00562b043615.cfg", "00562b043615", None),  # a TFTP file name
        ("\\prov\\00562b043615.cfg", "00562b043615", None),
        ("/8841.xml", None, "8841"),  # MPP's default rule /$PSN.xml: a model, no phone
        ("/FCH2233A1B2.xml", None, "FCH2233A1B2"),  # /$SN.xml
        ("/spa504G.cfg", None, "spa504G"),  # spa$PSN.cfg
        ("/%30%30562b043615.cfg", "00562b043615", None),  # percent-encoded
    ],
)
def test_profile_names(path, mac, key):
    name = parse_profile_path(path)
    assert name is not None
    assert (name.mac, name.key) == (mac, key)


@pytest.mark.parametrize("path", ["/", "", "/Cisco/", "/..", "/."])
def test_paths_that_name_no_file(path):
    assert parse_profile_path(path) is None


def test_a_name_that_is_neither_a_mac_nor_a_key():
    """Spaces or shell characters are no serial number: nothing to look up, but still a file name."""
    assert parse_profile_path("/a b;c.cfg") == ProfileName("a b;c.cfg", None, None)
