"""The Broadband Forum CWMP XSDs, and a validator per CWMP version.

The schemas import each other and the SOAP schemas by their public URLs; a
resolver maps those URLs to the copies in this folder so that loading never
touches the network. CWMP 1.3 and 1.4 keep the ``cwmp-1-2`` namespace and only
extend its schema, which is why five protocol versions use three namespaces.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

HERE = Path(__file__).parent

#: CWMP protocol version -> (schema file, target namespace)
SCHEMAS: dict[str, tuple[str, str]] = {
    "1.0": ("cwmp-1-0.xsd", "urn:dslforum-org:cwmp-1-0"),
    "1.1": ("cwmp-1-1.xsd", "urn:dslforum-org:cwmp-1-1"),
    "1.2": ("cwmp-1-2.xsd", "urn:dslforum-org:cwmp-1-2"),
    "1.3": ("cwmp-1-3.xsd", "urn:dslforum-org:cwmp-1-2"),
    "1.4": ("cwmp-1-4.xsd", "urn:dslforum-org:cwmp-1-2"),
}
VERSIONS = tuple(SCHEMAS)

_LOCATIONS = {
    "http://schemas.xmlsoap.org/soap/envelope/": HERE / "deps" / "soap-envelope.xsd",
    "http://schemas.xmlsoap.org/soap/encoding/": HERE / "deps" / "soap-encoding.xsd",
}


class _LocalResolver(etree.Resolver):
    """Serve imported schemas from this folder; refuse anything else."""

    def resolve(self, url: str, pubid: str | None, context: object) -> object:
        local = _LOCATIONS.get(url)
        if local is None and url.startswith("http://www.broadband-forum.org/cwmp/"):
            local = HERE / url.rsplit("/", 1)[1]
        if local is None:
            local = Path(url)
            if not local.is_file() or HERE not in local.resolve().parents:
                raise LookupError(f"schema {url!r} is not shipped with cwmp_schemas")
        return self.resolve_filename(str(local), context)


def namespace(version: str) -> str:
    """The ``cwmp`` namespace URI a message of this protocol version uses."""
    return SCHEMAS[version][1]


@cache
def validator(version: str) -> etree.XMLSchema:
    """An XMLSchema for whole SOAP envelopes of one CWMP version (1.0-1.4).

    The SOAP Body accepts any element with lax processing, so the CWMP
    elements inside it are validated against the CWMP schema of that version.
    """
    try:
        filename = SCHEMAS[version][0]
    except KeyError:
        raise ValueError(f"unknown CWMP version {version!r}; known: {', '.join(VERSIONS)}") from None
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalResolver())
    doc = etree.parse(str(HERE / filename), parser)
    return etree.XMLSchema(doc)
