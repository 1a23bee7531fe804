"""The northbound API's Twisted resource: a thin shell around the route table.

On the reactor: match the route, read the token and the body. On the thread pool, in one
transaction: authenticate the token, check its role, parse and check the input, run the
handler. Back on the reactor: for a task created with ``connection_request`` or ``timeout``,
kick the device and follow the task (a pool query every ``poll_interval`` seconds, scheduled
with ``callLater``, so waiting holds no thread), then write JSON or an RFC 9457 problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import IO, Any, cast

from sqlalchemy.engine import Engine
from twisted.internet import defer, task, threads
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server
from twisted.web.resource import IResource

from acs.jobs import queue
from acs.nbi import openapi, tokens
from acs.nbi.api import router
from acs.nbi.problem import CONTENT_TYPE as PROBLEM_TYPE
from acs.nbi.problem import ApiError
from acs.nbi.routing import (
    XML_TYPES,
    BadJson,
    Call,
    Reply,
    Route,
    check_body,
    check_texts,
    parse_json,
    parse_path,
    parse_query,
)
from acs.nbi.tokens import AccessDenied
from acs.usecases.encoding import encode
from acs.web.boundedlog import BoundedLog, Long, loggable

log = logging.getLogger(__name__)

#: What ``connection_request=true`` calls: ``ConnectionRequester.kick``, which fires with a
#: ``KickResult`` (never fails).
Kicker = Callable[[str], "defer.Deferred[Any]"]
_AUTH_HELP = "Authorization: Bearer <token>, a token made with `acs token create`"


def bearer(request: server.Request) -> str:
    """The request's token, or 401 saying how to send one."""
    header = request.getHeader(b"authorization")
    challenge = {"WWW-Authenticate": 'Bearer realm="acs"'}
    if not header:
        raise ApiError(401, "no token", field="header.Authorization", allowed=_AUTH_HELP, headers=challenge)
    scheme, _, token = header.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            f"not a bearer token ({scheme} ...)",
            field="header.Authorization",
            allowed=_AUTH_HELP,
            headers=challenge,
        )
    return token.strip()


def soap_authorize(engine: Engine) -> Callable[[str | None, str], str]:
    """The SOAP service's token check (``acs.nbi.soap.Authorize``), against the same tokens and
    roles as the REST endpoints; it runs on the WSGI thread, never the reactor."""

    def authorize(token: str | None, role: str) -> str:
        if token is None:
            raise AccessDenied(401, f"an API token is required: {_AUTH_HELP}")
        with engine.begin() as conn:
            holder = tokens.authenticate(conn, token)
        if holder is None:  # the fault says so in the log (acs.nbi.soap), at a bounded rate
            raise AccessDenied(401, "the token is unknown or revoked")
        if not tokens.allows(holder["role"], role):
            raise AccessDenied(403, f"token {holder['name']!r} has role {holder['role']}; this needs {role}")
        return str(holder["name"])

    return authorize


class NbiSite(resource.Resource):
    """The NBI port's root: ``/soap`` (the SOAP flavour, WSDL at ``/soap?wsdl``), the REST API on
    every other path."""

    def __init__(self, rest: NbiResource, soap: IResource) -> None:
        super().__init__()
        self.rest = rest
        self.soap = soap

    def getChild(self, path: bytes, request: server.Request) -> IResource:
        return self.soap if path == b"soap" else self.rest

    def render(self, request: server.Request) -> Any:
        return self.rest.render(request)


class NbiResource(resource.Resource):
    """Every path of the NBI port: the routes of ``acs.nbi.api`` and ``/openapi.json``."""

    isLeaf = True

    def __init__(
        self,
        engine: Engine,
        pool: ThreadPool,
        *,
        reactor: Any = None,
        kicker: Kicker | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.engine = engine
        self.pool = pool
        self.reactor = reactor
        self.kicker = kicker
        self.poll_interval = poll_interval
        #: the lines a stranger can cause (an unknown token, a request that failed)
        self.say = BoundedLog(reactor, log)

    def _in_thread(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(self.reactor, self.pool, fn, *args)

    def render(self, request: server.Request) -> Any:
        d = defer.ensureDeferred(self._handle(request))
        d.addErrback(self._crash, request)
        return server.NOT_DONE_YET

    async def _handle(self, request: server.Request) -> None:
        try:
            reply = await self._answer(request)
        except ApiError as e:
            reply = Reply(e.status, e.body(), e.headers)
        if not request.finished and not getattr(request, "_disconnected", False):
            self._write(request, reply)

    async def _answer(self, request: server.Request) -> Reply:
        if getattr(request, "too_large", False):
            raise ApiError(
                413,
                "body too large",
                field="body",
                allowed=f"at most {getattr(request, 'max_size', '?')} bytes",
            )
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("ascii", "replace")
        if path == "/openapi.json":
            if method != "GET":
                raise ApiError(
                    405,
                    f"{method} is not allowed on {path}",
                    field="method",
                    allowed="GET",
                    headers={"Allow": "GET"},
                )
            return Reply(200, openapi.document_bytes())
        route, raw_path = router.match(method, path)
        token = bearer(request)
        # twisted.web declares Request.content as None; a request's body is a file
        body = cast(IO[bytes], request.content).read() if route.body is not None else None
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        accept = (request.getHeader(b"accept") or b"").decode("latin-1")
        peer = getattr(request.getClientAddress(), "host", None)
        reply, holder = await self._in_thread(
            self._run, route, raw_path, request.args, token, body, content_type, peer, accept
        )
        if method != "GET":  # who changed what; the token by its name, never itself
            log.info("NBI %s %s -> %d (token %s)", method, loggable(path), reply.status, holder)
        if reply.follow is not None:
            reply = await self._follow(reply)
        return reply

    def _run(
        self,
        route: Route,
        raw_path: dict[str, str],
        args: dict[bytes, list[bytes]],
        token: str,
        body: bytes | None,
        content_type: str,
        peer: str | None,
        accept: str = "",
    ) -> tuple[Reply, str]:
        """On a database thread, one transaction: who is asking, may they, is the input right, do it."""
        with self.engine.begin() as conn:
            holder = tokens.authenticate(conn, token)
            if holder is None:
                self.say("token", logging.WARNING, "NBI: unknown or revoked token from %s", peer)
                raise ApiError(
                    401,
                    "the token is unknown or revoked",
                    field="header.Authorization",
                    allowed=_AUTH_HELP,
                    headers={"WWW-Authenticate": 'Bearer realm="acs", error="invalid_token"'},
                )
            if not tokens.allows(holder["role"], route.role):
                able = [r for r in tokens.ROLES if tokens.allows(r, route.role)]
                raise ApiError(
                    403,
                    f"token {holder['name']!r} has role {holder['role']}; {route.method} {route.path} needs "
                    f"{route.role}",
                    field="header.Authorization",
                    allowed=f"a token with role {' or '.join(able)}",
                )
            call = Call(
                conn, parse_path(route, raw_path), parse_query(route, args), None, holder, accept=accept
            )
            if route.body is not None:
                document, call.media = _read_body(route, body or b"", content_type)
                call.body = check_body(route.body, document)
            reply = route.handler(call)
        return reply, holder["name"]

    async def _follow(self, reply: Reply) -> Reply:
        """Kick the device if asked, then wait up to the timeout for the task to end: 200 if it did."""
        follow = reply.follow
        assert follow is not None
        if follow.task_id is None:
            return Reply(200, await self._kick(follow.device_id), reply.headers)
        body = dict(reply.body)
        if follow.connection_request:
            body["connection_request"] = await self._kick(follow.device_id)
        deadline = self.reactor.seconds() + follow.timeout
        while body["status"] not in queue.FINAL and self.reactor.seconds() < deadline:
            await task.deferLater(self.reactor, min(self.poll_interval, deadline - self.reactor.seconds()))
            current = await self._in_thread(self._task_json, follow.task_id)
            if current is None:  # deleted meanwhile, with its device
                break
            body |= current
        return Reply(200 if body["status"] in queue.FINAL else 202, body, reply.headers)

    def _task_json(self, task_id: int) -> dict[str, Any] | None:
        found = queue.get(self.engine, task_id)
        return queue.task_json(found) if found is not None else None

    async def _kick(self, device_id: str) -> dict[str, Any]:
        """What came of asking the device for a session (``KickResult.to_json``, as ``acs task add
        --now --json`` shows it)."""
        if self.kicker is None:
            return {
                "device_id": device_id,
                "outcome": "error",
                "method": None,
                "summary": "this server sends no connection requests: the task waits for the next session",
                "attempts": [],
            }
        result = await self.kicker(device_id)
        return result.to_json()

    def _write(self, request: server.Request, reply: Reply) -> None:
        request.setResponseCode(reply.status)
        for name, value in reply.headers.items():
            request.setHeader(name.encode(), value.encode())
        if reply.body is None:
            request.setHeader(b"content-length", b"0")
            request.finish()
            return
        data = reply.body if isinstance(reply.body, bytes) else encode(reply.body)
        if "Content-Type" not in reply.headers:  # an XML answer says so; JSON is the rule
            kind = PROBLEM_TYPE if reply.status >= 400 else "application/json"
            request.setHeader(b"content-type", kind.encode())
        request.setHeader(b"content-length", str(len(data)).encode())
        request.write(data)
        request.finish()

    def _crash(self, failure: Any, request: server.Request) -> None:
        self.say("crash", logging.ERROR, "NBI request failed: %s", Long(failure.getTraceback()))
        if not request.finished and not getattr(request, "_disconnected", False):
            problem = ApiError(500, "internal error; see the server's log")
            self._write(request, Reply(500, problem.body()))


def _read_body(route: Route, body: bytes, content_type: str) -> tuple[Any, str]:
    """The body as a JSON document, and its media type: JSON, or for a route that takes one an XML
    document as ``{route.xml_body: text}``; an empty optional body is ``{}``."""
    assert route.body is not None
    media = content_type.split(";", 1)[0].strip().lower()
    if route.body_optional and not body.strip():
        return {}, media or "application/json"
    if route.xml_body is not None and media in XML_TYPES:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ApiError(
                422, f"body is not UTF-8 (byte {e.start})", field="body", allowed="UTF-8 XML"
            ) from None
        check_texts(text)
        return {route.xml_body: text}, "application/xml"
    return _json_body(body, media, route.body, xml=route.xml_body is not None), media


def _json_body(body: bytes, media: str, schema: str, *, xml: bool = False) -> Any:
    if media != "application/json":
        accepted = "application/json" + (" or application/xml" if xml else "")
        raise ApiError(415, f"body of type {media or 'none'}", field="header.Content-Type", allowed=accepted)
    allowed = f"a {schema} object (see /openapi.json)"
    try:
        document = parse_json(body)
    except BadJson as e:
        raise ApiError(400, f"body is not JSON the API takes: {e}", field="body", allowed=allowed) from None
    if not isinstance(document, dict):  # every body is an object: say so, not which branch it missed
        raise ApiError(400, f"body is {_kind(document)}, not a JSON object", field="body", allowed=allowed)
    check_texts(document)
    return document


def _kind(document: Any) -> str:
    if isinstance(document, list):
        return "an array"
    if isinstance(document, str):
        return "a string"
    if isinstance(document, bool):
        return "true or false"
    return "null" if document is None else "a number"
