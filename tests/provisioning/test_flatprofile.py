"""Flat profiles: read as an MPP phone reads them, problems named by line and element, written back."""

from __future__ import annotations

import pytest

from acs.provisioning import flatprofile as fp
from tests.provisioning.samples import sample


def test_the_full_sample_export_reads_whole_and_clean():
    profile = fp.parse(sample("full-profile.xml"))
    assert profile.problems == []
    assert len(profile) == 449
    assert profile.get("Enable_Protocol").value == "Https"
    assert profile.get("Enable_Protocol").ua == "na"
    assert profile.get("User_Password").ua == "rw"
    assert profile.get("Static_IP").value == ""  # <Static_IP ua="na"/>: empty
    assert profile.get("Line_Enable_1_").line is not None


def test_device_wrapper_comments_whitespace_and_escapes():
    profile = fp.parse(
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<device>\n<flat-profile>\n"
        b"<!-- Ext 1 -->\n"
        b'<Proxy_1_ ua="na">  sip.example.net  </Proxy_1_>\n'
        b'<Dial_Plan_1_ ua="na">(*xx|[3469]11|&lt;9:&gt;xx.)</Dial_Plan_1_>\n'
        b"<Station_Name>front\ndesk</Station_Name>\n"
        b"<GPP_A></GPP_A>\n"
        b'<Speed_Dial_2_Name ua="rw" preserve-value="y"/>\n'
        b"</flat-profile>\n</device>\n"
    )
    assert profile.problems == []
    assert [(e.name, e.value, e.ua, e.line) for e in profile] == [
        ("Proxy_1_", "sip.example.net", "na", 5),
        ("Dial_Plan_1_", "(*xx|[3469]11|<9:>xx.)", "na", 6),
        ("Station_Name", "front desk", None, 7),
        ("GPP_A", "", None, 9),  # the value above spans lines 7 and 8
        ("Speed_Dial_2_Name", "", "rw", 10),
    ]
    assert profile.get("Speed_Dial_2_Name").attributes == {"preserve-value": "y"}


def test_malformed_elements_are_errors_with_line_and_element_and_the_rest_is_kept():
    profile = fp.parse(
        b"<flat-profile>\n"
        b'<Proxy_1_ ua="na">sip.example.net</Proxy_1_>\n'
        b"<Dial_Plan_1_>(*xx|<b>9</b>)</Dial_Plan_1_>\n"
        b'<User_ID_1_ ua="admin">1001</User_ID_1_>\n'
        b"<Display_Name_1_>Alice</Display_Name_1_>\n"
        b"</flat-profile>\n"
    )
    assert [str(p) for p in profile.errors] == [
        "line 3, <Dial_Plan_1_>: contains <b>: a parameter holds text only (write < and > as &lt; &gt;)",
        'line 4, <User_ID_1_>: ua="admin" is not allowed; use ua="na", "ro" or "rw"',
    ]
    # the bad ua is dropped, the value kept; the nested element is not guessed at
    assert profile.values() == {
        "Proxy_1_": "sip.example.net",
        "User_ID_1_": "1001",
        "Display_Name_1_": "Alice",
    }
    with pytest.raises(fp.FlatProfileError, match=r"line 3, <Dial_Plan_1_>"):
        fp.parse_strict(
            b"<flat-profile>\n<Proxy_1_>x</Proxy_1_>\n<Dial_Plan_1_><b/></Dial_Plan_1_></flat-profile>"
        )


def test_broken_xml_names_the_line_and_tag_and_recovers_what_it_can():
    profile = fp.parse(
        b"<flat-profile>\n<Proxy_1_>a</Proxy_1_>\n<User_ID_1_>1001</User_ID>\n</flat-profile>\n"
    )
    (error,) = profile.errors
    assert error.line == 3
    assert "User_ID_1_" in error.message and "not well-formed" in error.message
    assert profile.get("Proxy_1_").value == "a"


def test_unknown_names_and_duplicates_are_warnings_and_the_last_wins():
    profile = fp.parse(
        b"<flat-profile>\n<Proxy_1_>a</Proxy_1_>\n<Proxxy_2_>b</Proxxy_2_>\n<Proxy_1_>c</Proxy_1_>\n</flat-profile>"
    )
    assert profile.errors == []
    assert [(p.line, p.element) for p in profile.warnings] == [(3, "Proxxy_2_"), (4, "Proxy_1_")]
    assert "last one wins" in profile.warnings[1].message
    assert profile.values() == {"Proxy_1_": "c", "Proxxy_2_": "b"}
    assert fp.is_known("Proxy_12_") and fp.is_known("Line_Enable_3_") and not fp.is_known("Proxxy_2_")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<profile><A>1</A></profile>", "root element must be <flat-profile>"),
        (b"<device><other/></device>", "no <flat-profile> inside <device>"),
        (
            b'<!DOCTYPE f [<!ENTITY e "x">]><flat-profile><GPP_A>&e;</GPP_A></flat-profile>',
            "DOCTYPE is not allowed",
        ),
        (b"", "not well-formed"),
    ],
)
def test_what_is_not_a_flat_profile_is_refused_in_words(data, message):
    profile = fp.parse(data)
    assert any(message in p.message for p in profile.errors), profile.problems


def test_entities_are_never_expanded_and_size_is_capped():
    bomb = (
        b'<!DOCTYPE f [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<flat-profile><GPP_A>&b;</GPP_A></flat-profile>"
    )
    profile = fp.parse(bomb)
    assert profile.errors
    assert all("aaaa" not in e.value for e in profile)
    assert (
        "at most"
        in fp.parse(b"<flat-profile>" + b" " * 100 + b"</flat-profile>", max_size=50).errors[0].message
    )


def test_render_round_trips_and_writes_empty_values_as_open_close_tags():
    source = fp.parse(sample("full-profile.xml"))
    written = fp.render(source, device_wrapper=True, comment="for 00562b043615")
    assert written.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- for 00562b043615 -->\n<device>\n'
    )
    back = fp.parse(written)
    assert back.problems == []
    assert [(e.name, e.value, e.ua) for e in back] == [(e.name, e.value, e.ua) for e in source]
    assert b'<Static_IP ua="na"></Static_IP>' in written
    assert b"<Dial_Plan_1_" in written
    tricky = fp.FlatProfile([fp.Element("Dial_Plan_1_", "(<9:>xx.|*xx)&", "na")])
    assert b'<Dial_Plan_1_ ua="na">(&lt;9:&gt;xx.|*xx)&amp;</Dial_Plan_1_>' in fp.render(tricky)
    assert fp.parse(fp.render(tricky)).get("Dial_Plan_1_").value == "(<9:>xx.|*xx)&"


def test_compose_later_layers_override_and_keep_ua_when_they_give_none():
    defaults = fp.parse(
        b'<flat-profile><Proxy_1_ ua="na">a</Proxy_1_><Resync_Periodic>3600</Resync_Periodic></flat-profile>'
    )
    model = fp.parse(
        b"<flat-profile><Resync_Periodic>86400</Resync_Periodic><Station_Name>m</Station_Name></flat-profile>"
    )
    device = fp.parse(
        b'<flat-profile><Proxy_1_>b</Proxy_1_><Station_Name ua="rw">d</Station_Name></flat-profile>'
    )
    merged = fp.compose([defaults, model, device])
    assert [(e.name, e.value, e.ua) for e in merged] == [
        ("Proxy_1_", "b", "na"),
        ("Resync_Periodic", "86400", None),
        ("Station_Name", "d", "rw"),
    ]


def test_mask_text_masks_secret_values_where_they_are_and_keeps_the_rest_as_written():
    written = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- Alice -->\n<flat-profile>\n'
        '  <User_ID_1_ ua="na">1001</User_ID_1_>   <!-- her line -->\n'
        '  <Password_1_ ua="na">s3cr3t &amp; more</Password_1_>\n'
        "  <GPP_SA>key</GPP_SA>\n  <Password_2_/>\n</flat-profile>\n"
    )
    shown = fp.mask_text(written)
    assert shown == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- Alice -->\n<flat-profile>\n'
        '  <User_ID_1_ ua="na">1001</User_ID_1_>   <!-- her line -->\n'
        '  <Password_1_ ua="na">********</Password_1_>\n'
        "  <GPP_SA>********</GPP_SA>\n  <Password_2_/>\n</flat-profile>\n"
    )
    without = '<flat-profile>\n<Proxy_1_ ua="na">sip.example.net</Proxy_1_>\n</flat-profile>'
    assert fp.mask_text(without) is without
