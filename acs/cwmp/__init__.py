"""The CWMP codec: SOAP envelopes <-> typed RPC messages, CWMP 1.0-1.4. Pure, no I/O."""

from acs.cwmp import rpc
from acs.cwmp.codec import NAMESPACES, Envelope, parse, serialize
from acs.cwmp.faults import CwmpError, MessageTooLarge, describe

__all__ = ["NAMESPACES", "CwmpError", "Envelope", "MessageTooLarge", "describe", "parse", "rpc", "serialize"]
