"""Log lines a stranger can cause: written at a bounded rate, bounded in length, secrets masked.

Every port that answers strangers (CWMP, the profile server, the NBI, TFTP) logs what
went wrong with a request; without a bound, a flood of bad requests becomes a flood of
log lines and fills the disk. One ``BoundedLog`` per service, one *kind* per cause.

What a stranger sends (a path, a user name, a request body, an error message quoting it)
goes into such lines only through ``loggable``: cut to ``ARG_LIMIT`` characters, control
characters escaped (no forged log lines) and secrets masked as the ACS masks them for
display (``acs.store.inventory``: Password, Passphrase, PreSharedKey, Secret), plus
what carries a credential on the wire (Authorization headers, API tokens, Digest answers).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.python import threadable

from acs.store.inventory import MASK, SECRET_WORDS, is_secret

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

#: log lines of one kind a stranger can cause, at most, per LOG_INTERVAL seconds; the rest are counted
LOG_BURST, LOG_INTERVAL = 5, 10.0
#: characters of one argument of such a line, at most (a path, a user name, an error message)
ARG_LIMIT = 300
#: characters of a traceback in such a line, at most
TRACEBACK_LIMIT = 16_000


class Long(str):
    """An argument the ACS wrote itself (a traceback): kept up to TRACEBACK_LIMIT, newlines and all."""


# --- masking -----------------------------------------------------------------------------------

#: words that make a field a credential in free text: the parameter words, and the wire's own
_WORDS = "|".join(
    (*SECRET_WORDS, "Passwd", "Token", "Authorization", "ApiKey", "Api_Key", "Ikm", "Credential")
)
_KEY = rf"[\w.:-]*(?:{_WORDS})[\w.-]*"
_RULES: list[tuple[re.Pattern[str], Any]] = [
    # an Authorization header, as a line or in a repr of headers: everything after the name
    (
        re.compile(r"((?:proxy-)?authorization['\"]?\s*[:=]\s*)[^\r\n]+", re.I),
        lambda m: m.group(1) + MASK,
    ),
    # credentials by scheme, wherever they stand (a word in lower case is prose: "Basic refused")
    (
        re.compile(r"\b(Bearer|Basic)(\s+)(?-i:(?![a-z]+(?![\w.~+/=-])))[\w.~+/=-]+", re.I),
        lambda m: m.group(1) + m.group(2) + MASK,
    ),
    (re.compile(r"\b(Digest)(\s+)\w+=[^\r\n]*", re.I), lambda m: m.group(1) + m.group(2) + MASK),
    # <Password>...</Password>, <wsse:Password Type="...">...: the element's text
    (
        re.compile(rf"(<(?:[\w.-]+:)?{_KEY}(?:\s[^<>]*)?>)([^<]*)", re.I),
        lambda m: m.group(1) + (MASK if m.group(2).strip() else m.group(2)),
    ),
    # a ParameterValueStruct: <Name>...Password</Name><Value>...</Value>
    (
        re.compile(
            r"(<(?:[\w.-]+:)?Name(?:\s[^<>]*)?>\s*([^<]*?)\s*</(?:[\w.-]+:)?Name>\s*"
            r"<(?:[\w.-]+:)?Value(?:\s[^<>]*)?>)([^<]*)"
        ),
        lambda m: m.group(1) + (MASK if is_secret(m.group(2)) and m.group(3) else m.group(3)),
    ),
    # "password": "...", 'token': ..., in JSON or a repr; the value may be cut off at the end
    (
        re.compile(rf"""((["']){_KEY}\2\s*:\s*)(?:(["'])(?:(?!\3)[^\\]|\\.)*(?:\3|$)|[^,}}\]\s]+)""", re.I),
        lambda m: m.group(1) + '"' + MASK + '"',
    ),
    # a TR-069 parameter list item: ["Device...AuthPassword", "value", ...]
    (
        re.compile(r"""(\[\s*(["'])([^"'\\]*)\2\s*,\s*(["']))((?:(?!\4)[^\\]|\\.)*)"""),
        lambda m: m.group(1) + MASK if is_secret(m.group(3)) and m.group(5) else m.group(0),
    ),
    # password=..., access_token=... in a query string, a form or prose
    (re.compile(rf"(\b{_KEY}=)[^&\s;,\"'<>]+", re.I), lambda m: m.group(1) + MASK),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile(r"[\r\n]")


def mask_secrets(text: str) -> str:
    """``text`` with every credential it carries replaced by the mask."""
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text


def loggable(value: Any, limit: int = ARG_LIMIT) -> str:
    """What a log line may say of ``value``, text a stranger chose: secrets masked, control
    characters escaped, at most ``limit`` characters (and how long it was)."""
    whole = len(value) if isinstance(value, bytes | bytearray | str) else None
    if isinstance(value, bytes | bytearray):
        text = bytes(value[: limit * 4]).decode("utf-8", "backslashreplace")
    else:
        text = str(value)[: limit * 4]
    text = mask_secrets(text)  # before the cut, on a bounded prefix: a value cut short is masked too
    if not isinstance(value, Long):
        text = _LINE_BREAK.sub(lambda m: repr(m.group(0))[1:-1], text)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)
    if len(text) > limit or (whole is not None and whole > limit * 4):
        text = f"{text[:limit]}... ({whole} in all)"
    return text


def _bounded(arg: Any) -> Any:
    if isinstance(arg, Long):
        return loggable(arg, TRACEBACK_LIMIT)
    if isinstance(arg, str | bytes | bytearray):
        return loggable(arg)
    return arg


# --- the rate ----------------------------------------------------------------------------------


@dataclass
class _Window:
    written: int = 0
    left_out: int = 0
    last: str = ""  # the last line left out
    level: int = logging.INFO


class BoundedLog:
    """Log lines that strangers cause (a forged RRQ, a bad request, an unknown user) at a bounded rate.

    Of each kind, the first LOG_BURST lines of an interval are written at once; the rest
    are counted and the interval ends with one line saying how many there were and the last.
    Every str argument goes through ``loggable`` (a ``Long`` one up to TRACEBACK_LIMIT). It may
    be called from any thread: off the reactor's, the line is handed to the reactor.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        logger: logging.Logger,
        burst: int = LOG_BURST,
        interval: float = LOG_INTERVAL,
    ) -> None:
        self.reactor = reactor
        self.log = logger
        self.burst = burst
        self.interval = interval
        self.windows: dict[str, _Window] = {}
        self.timers: dict[str, Any] = {}

    def __call__(self, kind: str, level: int, message: str, *args: Any) -> None:
        args = tuple(_bounded(a) for a in args)
        if threadable.ioThread is not None and not threadable.isInIOThread():
            call = getattr(self.reactor, "callFromThread", None)
            if call is not None:  # a pool thread (the NBI's, spyne's): the windows live on the reactor
                call(self._say, kind, level, message, args)
                return
        self._say(kind, level, message, args)

    def _say(self, kind: str, level: int, message: str, args: tuple[Any, ...]) -> None:
        window = self.windows.get(kind)
        if window is None:
            window = self.windows[kind] = _Window()
            self.timers[kind] = self.reactor.callLater(self.interval, self._close, kind)
        if window.written < self.burst:
            window.written += 1
            self.log.log(level, message, *args)
        else:
            window.left_out += 1
            window.last, window.level = message % args, level

    def _close(self, kind: str) -> None:
        window = self.windows.pop(kind)
        del self.timers[kind]
        if window.left_out:
            self.log.log(
                window.level,
                "%s (and %d more like it in the last %g s)",
                window.last,
                window.left_out,
                self.interval,
            )

    def stop(self) -> None:
        for kind in list(self.timers):
            self.timers[kind].cancel()
            self._close(kind)


_SHARED: dict[tuple[int, str], tuple[Any, BoundedLog]] = {}


def bounded_log(reactor: IReactorTime, logger: logging.Logger) -> BoundedLog:
    """The one BoundedLog of ``logger`` on ``reactor``, made on first use: for the code that has a
    reactor at hand (an HTTP connection's) but no object of its own to keep one in."""
    key = (id(reactor), logger.name)
    found = _SHARED.get(key)
    if found is None or found[0] is not reactor:
        found = _SHARED[key] = (reactor, BoundedLog(reactor, logger))
        trigger = getattr(reactor, "addSystemEventTrigger", None)
        if trigger is not None:  # the counts left at shutdown are written
            trigger("before", "shutdown", found[1].stop)
    return found[1]


class TwistedStrangerLines(logging.Filter):
    """Twisted's own lines a stranger causes, on the twisted.web ports (profiles, NBI): one per
    idle connection timed out. They go through a BoundedLog instead of straight to the log."""

    LINES = (("Timing out client", "timeout"), ("Forcibly timing out client", "forced-timeout"))

    def __init__(self, say: BoundedLog) -> None:
        super().__init__()
        self.say = say

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for start, kind in self.LINES:
            if message.startswith(start):
                self.say(kind, record.levelno, "%s", message)
                return False
        return True


def access_line(timestamp: str, request: Any) -> str:
    """twisted.web's combined-log line (``--access-log``), a credential in the query string masked."""
    from twisted.web.http import combinedLogFormatter

    return mask_secrets(combinedLogFormatter(timestamp, request))
