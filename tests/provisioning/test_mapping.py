"""The TR-069 <-> XML map: every row lands on the simulated phone's tree, values convert both ways."""

from __future__ import annotations

import pytest

from acs.cwmp import values
from acs.provisioning import flatprofile as fp
from acs.provisioning import mapping
from acs.testing.datamodel import MODELS, VOICE, PhoneIdentity, build_phone


def stored_tree(product_class: str = "CP-8841-3PCC") -> dict[str, str]:
    model = MODELS[product_class]
    identity = PhoneIdentity(
        model, "FCH2233A1B2", "00562b043615", model.default_software_version, "10.4.54.21"
    )
    return {path: values.encode(p.value, p.type) for path, p in build_phone(identity).parameters()}


def test_every_row_of_the_shipped_map_names_a_writable_parameter_of_the_simulated_phone():
    model = build_phone(
        PhoneIdentity(MODELS["CP-8841-3PCC"], "S", "00562b043615", "sip88xx.12-0-1MPP-1", "10.0.0.2")
    )
    table = mapping.load_map()
    assert len(table.rules) >= 30
    for rule in table.rules:
        path = rule.path.replace("{n}", "1").replace("{*}", "1")
        parameter = model.parameter(path)
        assert parameter.writable, path
        assert parameter.type == rule.type, path
        assert fp.is_known(rule.element.replace("{n}", "1")), rule.element


def test_a_profile_becomes_typed_settings_only_for_what_the_phone_has():
    tree = stored_tree("CP-7821-3PCC")  # two lines
    profile = fp.parse(
        b"<flat-profile>"
        b"<Periodic_Inform_Interval>3600</Periodic_Inform_Interval>"
        b"<Line_Enable_2_>No</Line_Enable_2_>"
        b"<Proxy_1_>sip.example.net:5070</Proxy_1_>"
        b"<SIP_T1>.5</SIP_T1>"
        b"<SIP_TOS_DiffServ_Value_1_>0xb8</SIP_TOS_DiffServ_Value_1_>"
        b"<Block_CID_Enable_1_>Yes</Block_CID_Enable_1_>"
        b"<User_ID_3_>1003</User_ID_3_>"
        b"<SIP_Transport_1_>AUTO</SIP_Transport_1_>"
        b"<Register_Expires_1_>soon</Register_Expires_1_>"
        b"<Station_Name>desk</Station_Name>"
        b'<Password_2_ preserve-value="y">keep</Password_2_>'
        b"</flat-profile>"
    )
    result = mapping.load_map().to_tr069(profile, tree)
    got = {(s.path.removeprefix(VOICE), s.value, s.type) for s in result.settings}
    assert got == {
        ("Device.ManagementServer.PeriodicInformInterval", "3600", "unsignedInt"),
        ("CallControl.Line.2.Enable", "false", "boolean"),
        ("SIP.Network.1.ProxyServer", "sip.example.net", "string"),
        ("SIP.Network.1.ProxyServerPort", "5070", "unsignedInt"),
        ("SIP.Network.1.TimerT1", "500", "unsignedInt"),  # phone-wide: every SIP.Network
        ("SIP.Network.2.TimerT1", "500", "unsignedInt"),
        ("SIP.Network.1.DSCPMark", "46", "unsignedInt"),  # TOS 0xb8 = DSCP 46 (EF)
        ("CallControl.CallingFeatures.Set.1.CallerIDEnable", "false", "boolean"),
    }
    assert result.unmapped == ["Station_Name"]
    assert {(p.element, p.severity) for p in result.problems} == {
        ("User_ID_3_", "warning"),
        ("SIP_Transport_1_", "warning"),
        ("Register_Expires_1_", "warning"),
    }
    assert "the phone has no Device.Services.VoiceService.1.CallControl.Line.3.DirectoryNumber" in str(
        next(p for p in result.problems if p.element == "User_ID_3_")
    )


def test_only_values_that_differ_from_the_stored_tree_are_changes():
    tree = stored_tree()
    profile = fp.parse(
        b"<flat-profile><Periodic_Inform_Interval>20</Periodic_Inform_Interval>"
        b"<Periodic_Inform_Enable>yes</Periodic_Inform_Enable><Proxy_1_>sip.example.net</Proxy_1_>"
        b"<SIP_T1>0.5</SIP_T1></flat-profile>"
    )
    result = mapping.load_map().to_tr069(profile, tree)
    changed = mapping.changes(result.settings, tree)
    assert [(s.path, s.value) for s in changed] == [(f"{VOICE}SIP.Network.1.ProxyServer", "sip.example.net")]


def test_the_stored_tree_reads_back_under_xml_names():
    tree = stored_tree()
    tree[f"{VOICE}SIP.Network.2.ProxyServer"] = "sip.example.net"
    tree[f"{VOICE}SIP.Network.2.ProxyServerPort"] = "5070"
    tree[f"{VOICE}CallControl.Line.2.DirectoryNumber"] = "1002"
    xml = mapping.load_map().to_xml(tree).values()
    assert xml["Periodic_Inform_Interval"] == "20"
    assert xml["Enable_TR-069"] == "Yes"
    assert xml["SIP_T1"] == "0.5"
    assert xml["SIP_TOS_DiffServ_Value_1_"] == "0x68"
    assert xml["Interdigit_Long_Timer"] == "10"
    assert xml["Proxy_1_"] == ""
    assert xml["Proxy_2_"] == "sip.example.net:5070"
    assert xml["User_ID_2_"] == "1002"
    assert xml["SIP_Port_5_"] == "5064"
    # and back: the same values make no change
    again = mapping.load_map().to_tr069(fp.FlatProfile(mapping.load_map().to_xml(tree).elements), tree)
    assert mapping.changes(again.settings, tree) == []


def test_the_map_can_be_replaced_by_a_file(tmp_path, monkeypatch):
    path = tmp_path / "map.csv"
    path.write_text(
        "# mine\nelement,path,type,conversion\nStation_Name,Device.DeviceInfo.HostName,string,text\n"
    )
    monkeypatch.setenv(mapping.MAP_ENV, str(path))
    table = mapping.load_map()
    assert [r.element for r in table.rules] == ["Station_Name"]
    result = table.to_tr069(
        fp.parse(b"<flat-profile><Station_Name>d</Station_Name></flat-profile>"), stored_tree()
    )
    assert [(s.path, s.value) for s in result.settings] == [("Device.DeviceInfo.HostName", "d")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("element,path,type\nA,B,string\n", "missing columns conversion"),
        ("element,path,type,conversion\nA,B,string,upper\n", "line 2: conversion 'upper'"),
        ("element,path,type,conversion\nA_{n}_,B.1.C,string,text\n", "{n} must be in both"),
        ("element,path,type,conversion\nA,B,float,text\n", "type 'float'"),
    ],
)
def test_a_bad_map_file_is_refused_naming_its_line(text, message):
    with pytest.raises(mapping.MapError, match=message.replace("{", r"\{").replace("}", r"\}")):
        mapping.parse_map(text, "map.csv")
