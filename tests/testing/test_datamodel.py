"""The simulated phone's data model: shaped like a Device:2 phone, and named as the BBF models name things."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from acs.cwmp import values
from acs.testing.datamodel import MODELS, VOICE, DataModel, Parameter, PhoneIdentity, Table, build_phone

DATA_MODELS = Path(__file__).resolve().parents[1] / "data" / "data-models"


def phone_model(product_class: str = "CP-8841-3PCC") -> DataModel:
    model = MODELS[product_class]
    version = model.default_software_version
    identity = PhoneIdentity(model, "FCH2233A1B2", "00562b043615", version, "10.4.54.21")
    return build_phone(identity)


@pytest.mark.parametrize("product_class", list(MODELS))
def test_each_model_has_a_discovery_sized_tree_with_one_line_per_line_key(product_class):
    m = phone_model(product_class)
    lines = MODELS[product_class].lines
    assert 400 <= len(m.parameters()) <= 650
    assert m.instances(f"{VOICE}CallControl.Line.") == list(range(1, lines + 1))
    assert m.instances(f"{VOICE}SIP.Client.") == list(range(1, lines + 1))
    assert m.parameter(f"{VOICE}CallControl.LineNumberOfEntries").value == lines


def test_the_8841_has_five_lines_and_the_7841_four():
    assert MODELS["CP-8841-3PCC"].lines == 5
    assert MODELS["CP-7841-3PCC"].lines == 4
    assert phone_model("CP-7841-3PCC").parameter(f"{VOICE}SIP.Network.4.UserAgentPort").value == 5063


def test_every_node_has_its_parent_and_every_value_survives_the_wire():
    m = phone_model()
    for path, _ in m.names("", next_level=False):
        parent = path.rstrip(".").rpartition(".")[0] + "."
        assert parent == "." or parent in m, path
    for path, p in m.parameters():
        assert p.type in values.TYPES, path
        text = values.encode(p.value, p.type)
        assert values.decode(text, p.type)[0] == p.value, path


def test_get_parameter_names_semantics():
    m = phone_model()
    assert m.names("", next_level=True) == [("Device.", False)]
    children = [n for n, _ in m.names("Device.DeviceInfo.", next_level=True)]
    assert "Device.DeviceInfo.SoftwareVersion" in children
    assert "Device.DeviceInfo.MemoryStatus." in children
    assert "Device.DeviceInfo.MemoryStatus.Total" not in children
    subtree = m.names("Device.DeviceInfo.MemoryStatus.", next_level=False)
    assert subtree[0] == ("Device.DeviceInfo.MemoryStatus.", False)
    assert ("Device.DeviceInfo.MemoryStatus.Total", False) in subtree
    assert m.names("Device.ManagementServer.URL", next_level=False) == [("Device.ManagementServer.URL", True)]
    with pytest.raises(ValueError, match="NextLevel"):
        m.names("Device.ManagementServer.URL", next_level=True)
    with pytest.raises(KeyError):
        m.names("Device.DeviceInfo", next_level=True)  # an object's name ends with a dot


def test_tables_report_whether_the_acs_may_add_and_instances_whether_it_may_delete():
    m = phone_model()
    names = dict(m.names("", next_level=False))
    assert names[f"{VOICE}SIP.Client."] is True
    assert names[f"{VOICE}SIP.Client.1."] is True
    assert names["Device.Ethernet.Interface."] is False
    assert names["Device.Ethernet.Interface.1."] is False
    assert names["Device.DeviceInfo."] is False


def test_a_new_instance_is_listed_after_its_siblings_and_counted_and_its_number_is_never_reused():
    m = phone_model()
    table = "Device.ManagementServer.InformParameter."
    assert m.add_instance(table) == 1
    assert m.add_instance(table) == 2
    order = [n for n, _ in m.names("Device.ManagementServer.", next_level=False)]
    assert order.index(f"{table}2.ParameterName") > order.index(f"{table}1.EventList")
    assert order[-1] == f"{table}2.EventList"
    assert m.parameter("Device.ManagementServer.InformParameterNumberOfEntries").value == 2
    m.delete_instance(f"{table}2.")
    assert f"{table}2.Enable" not in m
    assert m.parameter("Device.ManagementServer.InformParameterNumberOfEntries").value == 1
    assert m.add_instance(table) == 3


def test_unknown_paths_are_key_errors():
    m = phone_model()
    with pytest.raises(KeyError):
        m.parameters("Device.NoSuchThing.")
    with pytest.raises(KeyError):
        m.parameter("Device.DeviceInfo.")
    with pytest.raises(KeyError):
        m.delete_instance("Device.DeviceInfo.")


# --- against the Broadband Forum data models ---------------------------------------------------------

_TYPES = set(values.TYPES) | {"base64"}


@cache
def _bbf(filename: str, prefix: str) -> dict[str, tuple[str, str]]:
    """Generic path (``{i}`` for instance numbers) -> (xsi type, access) from a BBF full XML."""
    path = DATA_MODELS / f"{filename}.gz"
    root = etree.parse(str(path)).getroot()
    data_types = {}
    for dt in root.iter("{*}dataType"):
        base = next((etree.QName(c).localname for c in dt if etree.QName(c).localname in _TYPES), None)
        data_types[dt.get("name")] = base or dt.get("base")
    model = root.findall(".//{*}model")[-1]
    found = {}
    for obj in [model, *model.findall("{*}object")]:  # a service model has parameters at its top
        name = prefix + (obj.get("name") if obj is not model else "")
        found[name] = ("object", obj.get("access"))
        for p in obj.findall("{*}parameter"):
            kind = "string"
            for child in p.find("{*}syntax"):
                tag = etree.QName(child).localname
                if tag == "dataType":
                    ref = child.get("ref") or child.get("base")
                    while ref in data_types and data_types[ref] not in _TYPES:
                        ref = data_types[ref]
                    kind = data_types.get(ref, "string")
                elif tag in _TYPES:
                    kind = tag
                if p.find("{*}syntax/{*}list") is not None:
                    kind = "string"  # lists travel as comma-separated strings
            found[name + p.get("name")] = (kind, p.get("access"))
    return found


def _generic(path: str) -> str:
    return re.sub(r"\.\d+(?=\.)", ".{i}", path)


def _definition(path: str) -> tuple[str, str] | None:
    generic = _generic(path)
    if generic.startswith("Device.Services.VoiceService"):
        return _bbf("tr-104-2-0-2-cwmp-full.xml", "Device.Services.").get(generic)
    return _bbf("tr-181-2-17-0-cwmp-full.xml", "").get(generic)


def test_every_parameter_is_named_typed_and_writable_as_tr181_and_tr104_define_it():
    m = phone_model()
    wrong = []
    for path, p in m.parameters():
        definition = _definition(path)
        if definition is None:
            wrong.append(f"{path}: not in the data model")
            continue
        kind, access = definition
        if kind != p.type:
            wrong.append(f"{path}: {p.type}, defined as {kind}")
        if p.writable != (access == "readWrite"):
            wrong.append(f"{path}: writable={p.writable}, defined as {access}")
    assert not wrong, "\n".join(wrong)


def test_the_acs_may_add_only_to_tables_the_data_models_make_writable():
    m = phone_model()
    for path, writable in m.names("", next_level=False):
        node = m.get(path)
        if isinstance(node, Table):
            definition = _definition(path + "{i}.")
            assert definition is not None, path
            assert not writable or definition[1] == "readWrite", path
        elif not isinstance(node, Parameter):
            assert _generic(path) == "Device." or _definition(path) is not None, path
