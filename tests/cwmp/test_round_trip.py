"""What the ACS writes, it (and so a CPE) reads back as the same message: build -> parse -> equal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from acs.cwmp import codec, parse, rpc, serialize
from acs.cwmp.values import UNKNOWN_TIME
from tests.cwmp.samples import VERSIONS, envelope, inform, messages


def _exact(message: rpc.Message) -> bool:
    """Floats are written as xsd:decimal and read back as Decimal: compared on their own below."""
    return not any(
        isinstance(getattr(p, "Value", None), float) for p in getattr(message, "ParameterList", ())
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("message", [pytest.param(m, id=n) for n, m in messages() if _exact(m)])
def test_every_message_reads_back_equal(version, message):
    sent = envelope(message, version)
    got = parse(serialize(sent))
    assert got == sent
    assert type(got.body) is type(message)


def test_typed_values_read_back_with_their_python_type():
    (_, gpvr) = next((n, m) for n, m in messages() if n == "GetParameterValuesResponse")
    got = parse(serialize(envelope(gpvr, "1.2"))).body
    for sent, read in zip(gpvr.ParameterList, got.ParameterList, strict=True):
        if isinstance(sent.Value, float):
            assert read.Value == Decimal(repr(sent.Value))
            assert read.Type == "decimal"
        else:
            assert (read.Name, read.Value, read.Type) == (sent.Name, sent.Value, sent.Type)
            assert type(read.Value) is type(sent.Value)


@pytest.mark.parametrize(
    "header",
    [
        {"HoldRequests": True},
        {"HoldRequests": False},
        {"SessionTimeout": 30},
        {"SupportedCWMPVersions": ("1.0", "1.1", "1.2", "1.3", "1.4"), "SessionTimeout": 120},
        {"UseCWMPVersion": "1.4"},
    ],
    ids=str,
)
def test_headers_read_back_equal(header):
    message = rpc.InformResponse() if "HoldRequests" in header or "UseCWMPVersion" in header else inform()
    sent = envelope(message, "1.4", **header)
    assert parse(serialize(sent)) == sent


def test_versions_read_back_from_headers():
    assert parse(serialize(envelope(inform(), "1.3", SessionTimeout=30))).version == "1.3"
    both = envelope(inform(), "1.4", SessionTimeout=30, SupportedCWMPVersions=("1.0", "1.4"))
    assert parse(serialize(both)).version == "1.4"
    assert parse(serialize(envelope(rpc.InformResponse(), "1.4", UseCWMPVersion="1.3"))).version == "1.3"
    for version in ("1.0", "1.1", "1.2"):
        assert parse(serialize(envelope(inform(), version))).version == version


# --- property-based: names and values of every type ---------------------------------------


def _xml_char(c: str) -> bool:
    o = ord(c)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


XML_TEXT = st.text(st.characters(exclude_categories=("Cs",)).filter(_xml_char), max_size=40)
SEGMENT = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,15}", fullmatch=True),
    st.integers(1, 9999).map(str),
)
#: TR-069 paths like Device.Services.VoiceService.1.X_CISCO_Foo, and names in any XML-legal text
NAMES = st.one_of(
    st.builds(
        lambda s, partial: ".".join(s) + ("." if partial else ""),
        st.lists(SEGMENT, min_size=1, max_size=8),
        st.booleans(),
    ),
    XML_TEXT.map(str.strip).filter(bool),
)


def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from([low, low + 1, 0 if low < 0 else low, high - 1, high]), st.integers(low, high)
    )


# xsd:dateTime carries its zone in whole minutes; Python's timezone also takes seconds and
# microseconds, which no CPE can send (0001-01-01T00:00:00 at +00:00:00.000001 has no UTC value
# and no xsd form)
OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda minutes: timedelta(minutes=minutes))
AWARE = st.datetimes(timezones=st.builds(timezone, OFFSETS))  # down to year 1 and up to 9999, any offset
TYPED = st.one_of(
    st.tuples(XML_TEXT, st.just("string")),
    st.tuples(_ints(-(2**31), 2**31 - 1), st.just("int")),
    st.tuples(_ints(0, 2**32 - 1), st.just("unsignedInt")),
    st.tuples(_ints(-(2**63), 2**63 - 1), st.just("long")),
    st.tuples(_ints(0, 2**64 - 1), st.just("unsignedLong")),
    st.tuples(st.booleans(), st.just("boolean")),
    st.tuples(st.one_of(AWARE, st.datetimes(), st.just(UNKNOWN_TIME)), st.just("dateTime")),
    st.tuples(st.binary(max_size=64), st.sampled_from(["base64", "hexBinary"])),
    st.tuples(
        st.decimals(min_value=-(10**20), max_value=10**20, allow_nan=False, allow_infinity=False),
        st.just("decimal"),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAMES, TYPED), min_size=1, max_size=8), st.sampled_from(VERSIONS))
@example([("Device.X", (" \t padded\r\n ", "string"))], "1.0")
@example([("Device.X", ("]]> &amp; <![CDATA[", "string"))], "1.2")
@example([("Device.X", (datetime(1, 1, 3, 3, 4, 5), "dateTime"))], "1.2")
@example([("Device.X", (Decimal("-0"), "decimal"))], "1.2")
def test_any_names_and_values_read_back_equal_with_their_type(params, version):
    sent = [rpc.ParameterValueStruct(name, value, kind) for name, (value, kind) in params]
    for message in (rpc.SetParameterValues(sent, "k"), rpc.GetParameterValuesResponse(sent)):
        got = parse(serialize(envelope(message, version))).body
        assert got.ParameterList == sent
        for s, g in zip(sent, got.ParameterList, strict=True):
            assert type(g.Value) is type(s.Value)
            if isinstance(s.Value, datetime):
                assert (g.Value.tzinfo is None) == (s.Value.tzinfo is None)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(-(2**64), 2**65),
        st.booleans(),
        st.binary(max_size=16),
        XML_TEXT,
        st.datetimes(timezones=st.just(UTC)),
        st.datetimes(),
    )
)
def test_untyped_values_get_a_type_and_read_back(value):
    sent = rpc.ParameterValueStruct("Device.X", value)
    (got,) = parse(serialize(envelope(rpc.GetParameterValuesResponse([sent]), "1.2"))).body.ParameterList
    assert got.Type != ""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        assert got.Value == str(value)  # beyond every integer type: the text is kept
    else:
        assert got.Value == value
        assert type(got.Value) is type(value)


@settings(max_examples=150, deadline=None)
@given(
    st.builds(
        rpc.DeviceIdStruct,
        XML_TEXT.map(str.strip),
        st.from_regex(r"[0-9A-F]{6}", fullmatch=True),
        XML_TEXT.map(str.strip),
        XML_TEXT.map(str.strip),
    ),
    st.lists(
        st.sampled_from(
            ["0 BOOTSTRAP", "1 BOOT", "2 PERIODIC", "4 VALUE CHANGE", "M Download", "X 00562B Provisioned"]
        ),
        max_size=6,
    ),
    st.integers(0, 2**32 - 1),
    st.text(min_size=1, max_size=30).filter(lambda s: s.isprintable()),
)
def test_any_inform_reads_back_equal(device, events, retries, cwmp_id):
    sent = codec.Envelope(
        body=rpc.Inform(
            DeviceId=device,
            Event=[rpc.EventStruct(e, "") for e in events],
            CurrentTime=datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC),
            RetryCount=retries,
        ),
        ID=cwmp_id,
        ns=codec.NAMESPACES["1.2"],
    )
    assert parse(serialize(sent)) == sent
