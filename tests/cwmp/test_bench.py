"""bench/codec.py compares like with like: its cases run and read the same Inform the same way (no timing)."""

from __future__ import annotations

import pytest
from lxml import etree

import cwmp_schemas
from acs.cwmp import parse, rpc
from bench import codec as bench

#: spyne 2.14 imports cgi, deprecated since Python 3.11: its warning, not ours
pytestmark = pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning")


def test_the_bench_inform_is_a_valid_mpp_inform_of_20_parameters():
    assert 3000 <= len(bench.INFORM) <= 4096
    assert cwmp_schemas.validator("1.2").validate(etree.fromstring(bench.INFORM))
    inform = parse(bench.INFORM).body
    assert inform.DeviceId.ProductClass == "CP-7841-3PCC"
    assert len(inform.ParameterList) == 20
    assert all(p.Name.startswith("Device.") for p in inform.ParameterList)
    assert inform == bench.dataclass_records()


def test_spyne_reads_what_the_codec_reads_and_builds_the_same_records():
    construct, soap11_parse = bench.spyne_cases()
    ours = parse(bench.INFORM).body
    theirs = soap11_parse()
    assert theirs.DeviceId.SerialNumber == ours.DeviceId.SerialNumber
    assert [e.EventCode for e in theirs.Event] == ours.event_codes
    assert theirs.CurrentTime == ours.CurrentTime
    # spyne keeps only the text of each value: that is what "drops xsi:type" costs
    assert [(p.Name, p.Value) for p in theirs.ParameterList] == [(n, v) for n, _, v in bench.PARAMETERS]
    built = construct()
    assert [(p.Name, p.Value, p.Type) for p in built.ParameterList] == [
        (p.Name, p.Value, p.Type) for p in bench.dataclass_records().ParameterList
    ]


def test_every_case_runs():
    for label, fn in bench.cases():
        assert fn() is not None, label
    assert parse(bench.build_gpv()).body == rpc.GetParameterValues(bench.GPV_NAMES)
    assert parse(bench.inform_to_inform_response()).body == rpc.InformResponse(MaxEnvelopes=1)
