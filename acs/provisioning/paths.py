"""Which phone a requested profile file name stands for.

Phones fetch what their ``Profile_Rule`` names after macro expansion: ``/$MA.cfg``
(``/00562b043615.cfg``), ``/$MAU.cfg``, ``/Cisco/$MA.cfg``, ``spa$MA.cfg``, or a
model-wide name such as MPP's default ``/$PSN.xml`` (``/8841.xml``), which names no
phone: then the User-Agent's MAC does. A name that is not a MAC may be a serial
number (``/$SN.xml``). Only the last path segment counts, so any folder layout works
(``/prov/cisco/$MA.cfg``). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

#: extensions a profile name may carry, stripped (repeatedly) to get at the phone's key
EXTENSIONS = (".cfg", ".xml", ".cnf", ".txt")
#: prefixes seen before a MAC in profile names: spa$MA.cfg (SPA), SEP$MAU.cnf.xml (Cisco enterprise)
_MAC_NAME = re.compile(r"^(?:spa|sep)?(?P<mac>[0-9a-f]{12})$", re.IGNORECASE)
_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ProfileName:
    """A requested file: its name, and the MAC or other key (serial, model series) it carries."""

    filename: str  # the last path segment, as requested: 00562b043615.cfg
    mac: str | None  # 12 lower-case hex digits, when the name is a MAC
    key: str | None  # the name without its extensions, when it is not a MAC: 8841, FCH2233A1B2


def parse_profile_path(path: str) -> ProfileName | None:
    """The profile a request path asks for; None when the path names no file (``/``, ``/Cisco/``).

    Takes HTTP paths (``/Cisco/00562b043615.cfg?x=1``, percent-encoded or not) and TFTP
    file names (``00562B043615.cfg``, ``\\prov\\8841.xml``).
    """
    path = unquote(path.partition("?")[0]).replace("\\", "/")
    filename = path.rpartition("/")[2].strip()
    if not filename or filename in (".", ".."):
        return None
    stem = filename
    while True:
        lowered = stem.lower()
        ext = next((e for e in EXTENSIONS if lowered.endswith(e) and len(stem) > len(e)), None)
        if ext is None:
            break
        stem = stem[: -len(ext)]
    m = _MAC_NAME.match(stem)
    if m:
        return ProfileName(filename, m.group("mac").lower(), None)
    return ProfileName(filename, None, stem if _KEY.match(stem) else None)
