"""A CPE simulator for testing the ACS: Cisco MPP phones that speak CWMP.

:mod:`~acs.testing.datamodel` builds a phone's TR-069 tree (Device:2 with a
TR-104 v2 VoiceService) and :mod:`~acs.testing.phone` is the phone's CWMP
logic with no I/O. Tests, demos and end-to-end checks of the server use this
package; the server itself never imports it.
"""

from acs.testing.datamodel import MODELS, DataModel, Parameter, PhoneModel
from acs.testing.phone import PhoneSession, SessionError, SimulatedPhone

__all__ = ["MODELS", "DataModel", "Parameter", "PhoneModel", "PhoneSession", "SessionError", "SimulatedPhone"]
