"""Cisco's macro variables (``$MA``, ``$(SN)``, ``$(MAU:4:2)``), expanded per device by the ACS.

Syntax as the phones read it (docs/cisco-mpp.md, "Macros"):
``$NAME`` takes the longest run of letters, digits and ``_`` after the ``$``
(``$MA.cfg`` is ``$MA`` then ``.cfg``; write ``$(MA)cfg`` to glue text on);
``$(NAME)`` is the same; ``$(NAME:p)`` and ``$(NAME:p:q)`` are the substring from
offset ``p`` (of length ``q``); ``$$`` is ``$``; an unknown name stays as written;
no recursion.

What the ACS knows of a device: ``MA``, ``MAU``, ``MAC`` (from its MAC), ``SN`` and
``SERIAL_NUMBER``, ``PN`` (its ProductClass, ``CP-8841-3PCC``), ``PSN`` (the model
number in it, ``8841``), ``SWVER``, ``HWVER``, ``EXTIP`` (the address it informed
from), and ``A``..``P`` from the profile's own ``GPP_A``..``GPP_P``.
Everything else (``$PRVTMR``, ``$SCHEME``, ``$UPGST``...) is the phone's own run-time
state and is left for the phone.

Elements the phone macro-expands itself (``Profile_Rule*``, ``Upgrade_Rule``,
``Resync_Trigger_*``, ``Log_*``, ``Report_Rule``, ``HTTP_User_Agent_Name``, the
``GPP_*`` registers) are left untouched by ``expand_profile``: a rule such as
``($SWVER ne sip88xx.12-0-1MPP-1)? http://fw/...`` must be evaluated by the phone
each time, not frozen with the version the phone had when the profile was made.

``GPP_SA``..``GPP_SD`` (``$SA``..``$SD``) are secrets the phone expands only inside
``--key``/``--uid``/``--pwd``: never here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from acs.provisioning.flatprofile import Element, FlatProfile

_MACRO = re.compile(
    r"\$(?:\$|\((?P<paren>[A-Za-z0-9_]+)(?::(?P<p>\d+)(?::(?P<q>\d+))?)?\)|(?P<bare>[A-Za-z0-9_]+))"
)
_MODEL_NUMBER = re.compile(r"(\d{3,4})")

#: element names (regex, full match) whose values the phone expands macros in by itself
PHONE_EXPANDED = re.compile(
    r"Profile_Rule(_[A-D])?|Upgrade_Rule|Resync_Trigger_\d+|Log_.*|Report_Rule|HTTP_User_Agent_Name"
    r"|GPP_S?[A-P]|PRT_Upload_Rule|Custom_CA_Rule"
)


def variables(device: Mapping[str, Any], gpp: Mapping[str, str] | None = None) -> dict[str, str]:
    """Macro name -> value for a device row (``mac``, ``serial_number``, ``product_class``,
    ``software_version``, ``hardware_version``, ``ip``: the ``devices`` columns), plus
    ``A``..``P`` from ``gpp`` (element name -> value, e.g. a profile's ``GPP_A``)."""
    out: dict[str, str] = {}
    mac = (device.get("mac") or "").lower()
    if mac:
        out |= {"MA": mac, "MAU": mac.upper(), "MAC": ":".join(mac[i : i + 2] for i in range(0, len(mac), 2))}
    serial = device.get("serial_number")
    if serial:
        out |= {"SN": serial, "SERIAL_NUMBER": serial}
    product = device.get("product_class")
    if product:
        out["PN"] = product
        number = _MODEL_NUMBER.search(product)
        if number:
            out["PSN"] = number.group(1)
    for name, column in (("SWVER", "software_version"), ("HWVER", "hardware_version"), ("EXTIP", "ip")):
        if device.get(column):
            out[name] = str(device[column])
    for letter in "ABCDEFGHIJKLMNOP":
        if gpp and f"GPP_{letter}" in gpp:
            out[letter] = gpp[f"GPP_{letter}"]
    return out


def expand_with(text: str, names: Mapping[str, str]) -> str:
    """``text`` with the macros in ``names`` replaced; unknown ones left as written."""
    if "$" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("paren") or m.group("bare")
        if name not in names:
            return m.group(0)
        value = names[name]
        if m.group("p") is not None:
            start = int(m.group("p"))
            value = value[start : start + int(m.group("q"))] if m.group("q") is not None else value[start:]
        return value

    return _MACRO.sub(one, text)


def expand(text: str, device: Mapping[str, Any], gpp: Mapping[str, str] | None = None) -> str:
    """``text`` with the device's macros expanded (see ``variables`` for what ``device`` holds)."""
    return expand_with(text, variables(device, gpp))


def expand_profile(profile: FlatProfile, device: Mapping[str, Any]) -> FlatProfile:
    """The profile with macros expanded for ``device``, except in elements the phone expands itself."""
    names = variables(device, profile.values())
    return FlatProfile(
        [
            e
            if PHONE_EXPANDED.fullmatch(e.name) or "$" not in e.value
            else Element(e.name, expand_with(e.value, names), e.ua, e.line, dict(e.attributes))
            for e in profile.elements
        ],
        list(profile.problems),
    )
