"""What a line a stranger causes may say (``loggable``), and how often (``BoundedLog``), with a fake
clock; the real ``acs serve`` under bad requests is in ``test_stranger_logs.py``."""

from __future__ import annotations

import logging
import threading

import pytest
from twisted.internet.task import Clock

from acs.web.boundedlog import ARG_LIMIT, BoundedLog, Long, TwistedStrangerLines, loggable

SECRET = "pw-7Hq2x"
log = logging.getLogger("tests.boundedlog")


@pytest.mark.parametrize(
    "text",
    [
        # a WS-Security UsernameToken, as a SOAP stack sends it
        f'<wsse:UsernameToken><wsse:Username>oss</wsse:Username><wsse:Password Type="x#PasswordText">{SECRET}'
        "</wsse:Password></wsse:UsernameToken>",
        # a SetParameterValues item, in XML and in JSON (and a repr)
        f"<Name>Device.Services.VoiceService.1.SIP.Client.1.AuthPassword</Name><Value>{SECRET}</Value>",
        f'{{"ParameterList": [["Device.ManagementServer.ConnectionRequestPassword", "{SECRET}", "string"]]}}',
        f"[['InternetGatewayDevice.WLANConfiguration.1.PreSharedKey.1.KeyPassphrase', '{SECRET}']]",
        # Download's file-server password, a profile key's passphrase and IKM
        f'{{"URL": "http://fw/x", "Password": "{SECRET}"}}',
        f'{{"passphrase": "{SECRET}", "ikm": "{SECRET}"}}',
        # HTTP credentials: a header line, headers as a repr, a bare Bearer or Basic
        f'Authorization: Digest username="acs", realm="acs", nonce="n", response="{SECRET}"',
        f"{{b'authorization': b'Bearer acs_{SECRET}', b'host': b'acs'}}",
        f"token was Bearer acs_{SECRET}",
        "Basic YWNzOnB3LTdIcTJ4",  # acs:pw-7Hq2x
        # a token or a password in a query string
        f"GET /devices?access_token={SECRET}&limit=5 HTTP/1.1",
        f"/cfg/SEP001122334455.xml?password={SECRET}",
        # a value cut short by the length bound
        f'{{"password": "{SECRET}',
        f"<Password>{SECRET}",
    ],
)
def test_secrets_are_masked_wherever_they_stand(text: str) -> None:
    shown = loggable(text)
    assert SECRET not in shown and "YWNzOnB3LTdIcTJ4" not in shown
    assert "********" in shown


def test_what_is_not_a_secret_is_left_as_it_came() -> None:
    prose = (
        "HTTP Basic refused on plain HTTP (it would send the password in clear); "
        "<ParameterKey>p-1</ParameterKey><Name>Device.DeviceInfo.ModelName</Name><Value>CP-8841</Value>"
    )
    assert loggable(prose) == prose


def test_a_line_is_bounded_and_cannot_forge_another() -> None:
    shown = loggable("x" * 100_000)
    assert len(shown) < ARG_LIMIT + 40 and shown.endswith("... (100000 in all)")
    forged = loggable("phone1\n2026-01-01 00:00:00 ERROR acs: forged\x1b[31m")
    assert "\n" not in forged and "\x1b" not in forged
    assert forged.startswith("phone1\\n2026") and forged.endswith("\\x1b[31m")
    traceback = Long("Traceback (most recent call last):\n  File 'x'\nValueError: password=abc")
    assert loggable(traceback, 10_000) == traceback.replace("password=abc", "password=********")


def test_every_text_argument_is_made_loggable(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    say = BoundedLog(clock, log)
    with caplog.at_level(logging.INFO, log.name):
        say(
            "denied",
            logging.WARNING,
            "user %r from %s: %s",
            f"a\nb{SECRET}",
            "192.0.2.1",
            f"Bearer {SECRET}x",
        )
        say("crash", logging.ERROR, "failed: %s", Long("one\ntwo"))
    assert [r.getMessage() for r in caplog.records] == [
        f"user 'a\\\\nb{SECRET}' from 192.0.2.1: Bearer ********",
        "failed: one\ntwo",
    ]


def test_a_line_said_on_a_pool_thread_is_written_by_the_reactor(caplog: pytest.LogCaptureFixture) -> None:
    """The NBI's token checks and spyne's faults run on pool threads; the counting stays on the reactor."""

    class Reactor(Clock):
        def __init__(self) -> None:
            super().__init__()
            self.handed: list[tuple[object, ...]] = []

        def callFromThread(self, f: object, *args: object) -> None:
            self.handed.append((f, *args))

    from twisted.python import threadable

    reactor = Reactor()
    say = BoundedLog(reactor, log, burst=1)
    before = threadable.ioThread
    threadable.registerAsIOThread()  # this thread is the reactor's
    try:
        with caplog.at_level(logging.INFO, log.name):
            worker = threading.Thread(
                target=lambda: say("token", logging.WARNING, "unknown token from %s", "x")
            )
            worker.start()
            worker.join()
            assert caplog.records == [] and len(reactor.handed) == 1
            f, *args = reactor.handed[0]
            f(*args)  # what the reactor does with it
            say("token", logging.WARNING, "unknown token from %s", "y")
            reactor.advance(10)
    finally:
        threadable.ioThread = before
    assert [r.getMessage() for r in caplog.records] == [
        "unknown token from x",
        "unknown token from y (and 1 more like it in the last 10 s)",
    ]


def test_twisted_lines_a_stranger_causes_are_bounded_too(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    quiet = TwistedStrangerLines(BoundedLog(clock, log, burst=2))

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("twisted", logging.INFO, __file__, 1, text, None, None)

    with caplog.at_level(logging.INFO, log.name):
        passed = [
            quiet.filter(record(f"Timing out client: IPv4Address(TCP, '192.0.2.{n}', 4000)"))
            for n in range(9)
        ]
        assert quiet.filter(record("Site starting on 7557"))  # every other line, as before
        clock.advance(10)
    assert passed == [False] * 9
    assert [r.getMessage() for r in caplog.records] == [
        "Timing out client: IPv4Address(TCP, '192.0.2.0', 4000)",
        "Timing out client: IPv4Address(TCP, '192.0.2.1', 4000)",
        "Timing out client: IPv4Address(TCP, '192.0.2.8', 4000) (and 7 more like it in the last 10 s)",
    ]
