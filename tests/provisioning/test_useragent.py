"""Phones are recognised by the User-Agent they fetch profiles with, in the forms Cisco firmware writes."""

from __future__ import annotations

import pytest

from acs.provisioning.useragent import PhoneAgent, parse_user_agent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # MPP default HTTP_User_Agent_Name, $VERSION ($MA)
        (
            "Cisco-CP-7832-3PCC/11.0.1 (00562b043615)",
            PhoneAgent("Cisco", "CP-7832-3PCC", "11.0.1", "00562b043615"),
        ),
        (
            "Cisco-CP-8851-3PCC/12.0.1 (00562b043615)",
            PhoneAgent("Cisco", "CP-8851-3PCC", "12.0.1", "00562b043615"),
        ),
        (
            "Cisco-CP-6841-3PCC/12.0.1 (c4c603731f67)",
            PhoneAgent("Cisco", "CP-6841-3PCC", "12.0.1", "c4c603731f67"),
        ),
        # upper-case MAC, no space before the bracket, trailing text
        (
            "Cisco-CP-8841-3PCC/11.3.2(00562B043615) extra",
            PhoneAgent("Cisco", "CP-8841-3PCC", "11.3.2", "00562b043615"),
        ),
        (
            "Cisco-ATA192-3PCC/11.2.1 (00562b043615)",
            PhoneAgent("Cisco", "ATA192-3PCC", "11.2.1", "00562b043615"),
        ),
        # SPA generation: model-firmware, then the MAC and the serial number
        (
            "Cisco/SPA504G-7.6.2e (0026991CF1D5)(CBT163904QR)",
            PhoneAgent("Cisco", "SPA504G", "7.6.2e", "0026991cf1d5", "CBT163904QR"),
        ),
        (
            "Linksys/SPA942-6.1.5(a) (0018F8123456)",
            PhoneAgent("Linksys", "SPA942", "6.1.5(a)", "0018f8123456"),
        ),
        # an operator's own HTTP_User_Agent_Name: only the MAC is known
        ("provisioning (00:56:2b:04:36:15)", PhoneAgent(mac="00562b043615")),
        # a model without a MAC (HTTP_User_Agent_Name=$VERSION)
        ("Cisco-CP-8841-3PCC/12.0.1", PhoneAgent("Cisco", "CP-8841-3PCC", "12.0.1")),
    ],
)
def test_cisco_user_agents(text, expected):
    assert parse_user_agent(text) == expected


@pytest.mark.parametrize("text", [None, "", "curl/8.1.2", "Mozilla/5.0 (X11; Linux x86_64)", "(not a mac)"])
def test_what_names_no_phone(text):
    """A browser or curl is no phone: no MAC to look it up by, nothing to record."""
    agent = parse_user_agent(text)
    assert agent is None or agent.mac is None


def test_the_simulated_phone_speaks_as_a_real_one():
    from acs.testing import SimulatedPhone

    phone = SimulatedPhone("CP-7841-3PCC", mac="00562b043615")
    agent = parse_user_agent(phone.user_agent)
    assert agent is not None
    assert (agent.model, agent.mac) == ("CP-7841-3PCC", "00562b043615")
