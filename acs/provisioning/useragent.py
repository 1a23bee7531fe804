"""Who a phone is, from the User-Agent it sends when it fetches its profile.

Cisco MPP phones send ``HTTP_User_Agent_Name``, by default ``$VERSION ($MA)``:
``Cisco-CP-7832-3PCC/11.0.1 (00562b043615)``: model (the TR-069 ProductClass),
firmware, MAC. The older SPA/ATA generation writes ``Cisco/SPA504G-7.6.2e
(0026991CF1D5)(CBT163904QR)``: model and firmware joined by a dash, and the serial
number in a second pair of brackets. The string is configurable on the phone, so
anything else still yields the MAC when one stands in brackets. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acs.store.inventory import normalize_mac


@dataclass(frozen=True, slots=True)
class PhoneAgent:
    """What a User-Agent says about a phone; a field it does not give is None."""

    vendor: str | None = None
    model: str | None = None  # CP-7832-3PCC, SPA504G: the ProductClass
    firmware: str | None = None  # 11.0.1, 7.6.2e
    mac: str | None = None  # 12 lower-case hex digits
    serial: str | None = None


# Cisco-CP-7832-3PCC/11.0.1 (00562b043615)
_MPP = re.compile(r"^(?P<vendor>[A-Za-z]+)-(?P<model>[A-Za-z0-9][A-Za-z0-9._-]*)/(?P<firmware>\S+)")
# Cisco/SPA504G-7.6.2e, Linksys/SPA942-6.1.5(a): the model ends where a version (a digit) starts
_SPA = re.compile(
    r"^(?P<vendor>[A-Za-z]+)/(?P<model>[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z][A-Za-z0-9]*)*)-(?P<firmware>\d\S*)"
)
# every "(...)" group after the product token: the MAC, then (SPA) the serial number
_BRACKETS = re.compile(r"\(([^()]*)\)")
_SERIAL = re.compile(r"^[A-Za-z0-9]{4,32}$")


def parse_user_agent(text: str | None) -> PhoneAgent | None:
    """The phone a User-Agent names, or None when it names neither a model nor a MAC."""
    if not text:
        return None
    text = text.strip()
    vendor = model = firmware = None
    rest = text
    m = _SPA.match(text) or _MPP.match(text)
    if m:
        vendor, model, firmware = m.group("vendor"), m.group("model"), m.group("firmware")
        rest = text[m.end() :]
        head, bracket, tail = firmware.partition("(")
        if bracket and normalize_mac(tail.partition(")")[0]):  # "11.0.1(00562b043615)": no space before it
            firmware, rest = head, f"({tail}{rest}"
    mac = serial = None
    for group in _BRACKETS.findall(rest):
        candidate = normalize_mac(group.strip())
        if mac is None and candidate is not None:
            mac = candidate
        elif mac is not None and serial is None and _SERIAL.match(group.strip()):
            serial = group.strip()
    if model is None and mac is None:
        return None
    return PhoneAgent(vendor=vendor, model=model, firmware=firmware, mac=mac, serial=serial)
