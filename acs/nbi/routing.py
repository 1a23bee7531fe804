"""The route table: each endpoint declared once, and the request checks that follow from it.

A route names its method and path, the role it needs, its parameters with their JSON
Schemas, its body's schema and its responses. The server parses and checks requests by
these declarations, and ``openapi`` writes the document from them: what the document says
a parameter accepts is what the server accepts.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import jsonschema
import referencing
import referencing.jsonschema

from acs.nbi.problem import ApiError
from acs.nbi.schemas import COMPONENTS, Schema
from acs.web.negotiation import qualities

ROLE_HELP = (
    "read: GET; operator: tasks, tags, faults and profile pushes; admin: policies, profiles, deleting and "
    "pre-registering devices"
)


@dataclass(frozen=True)
class Param:
    """A path or query parameter. Arrays are given by repeating the parameter (``a=1&a=2``)."""

    name: str
    where: str
    schema: Schema
    description: str = ""
    required: bool = False


#: the XML media types a route may take and give besides JSON (flat profiles)
XML_TYPES = ("application/xml", "text/xml")


@dataclass(frozen=True)
class Response:
    description: str
    schema: Schema | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: also given as application/xml, to a request whose Accept prefers it
    xml: bool = False


@dataclass(frozen=True)
class Follow:
    """After the handler: ask the device for a session now, and/or wait for the task to end; with no
    task, the answer is what came of the connection request (``POST .../connection-request``)."""

    task_id: int | None
    device_id: str
    timeout: float
    connection_request: bool


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    follow: Follow | None = None


@dataclass
class Call:
    """What a handler gets: a connection in the request's transaction and the checked input."""

    conn: Any
    path: dict[str, Any]
    query: dict[str, Any]
    body: Any
    token: dict[str, Any]
    #: the body's media type (application/json, or application/xml for a route with ``xml_body``)
    media: str = "application/json"
    #: the request's Accept header
    accept: str = ""

    @property
    def wants_xml(self) -> bool:
        return prefers_xml(self.accept)


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    role: str
    summary: str
    description: str
    params: tuple[Param, ...]
    body: str | None
    responses: Mapping[int, Response]
    #: the body property an application/xml body stands for (the body is then ``{xml_body: text}``)
    xml_body: str | None = None
    #: an empty body is taken as ``{}``
    body_optional: bool = False

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.path)


@functools.cache
def _compile(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        role: str,
        responses: Mapping[int, Response],
        params: tuple[Param, ...] = (),
        body: str | None = None,
        xml_body: str | None = None,
        body_optional: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated function as the handler of ``method path``; its docstring's first
        line is the summary, the rest the description."""

        def register(handler: Handler) -> Handler:
            doc = (handler.__doc__ or "").strip()
            summary, _, description = doc.partition("\n")
            self.routes.append(
                Route(
                    method,
                    path,
                    handler,
                    role,
                    summary.strip(),
                    description.strip(),
                    params,
                    body,
                    responses,
                    xml_body,
                    body_optional,
                )
            )
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for a request, and its path's parameters (percent-decoded); 404 or 405 if none."""
        allowed = []
        for route in self.routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, {k: _text(unquote_to_bytes(v), f"path.{k}") for k, v in m.groupdict().items()}
            allowed.append(route.method)
        if allowed:
            raise ApiError(
                405,
                f"{method} is not allowed on {path}",
                field="method",
                allowed=", ".join(sorted(set(allowed))),
                headers={"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise ApiError(
            404, f"no endpoint {path}", field="path", allowed="the paths of /openapi.json, e.g. /devices"
        )


def prefers_xml(accept: str) -> bool:
    """Whether an Accept header ranks XML above JSON (a tie, or no header, is JSON)."""
    weights = qualities(accept)

    def quality(media: str) -> float:
        kind = media.split("/")[0]
        for key in (media, f"{kind}/*", "*/*"):
            if key in weights:
                return weights[key]
        return 0.0

    return max(quality(m) for m in XML_TYPES) > quality("application/json")


# --- parameters ------------------------------------------------------------------------------


def describe(schema: Schema) -> str:
    """What a schema accepts, in words, for a problem's ``allowed``."""
    if "$ref" in schema:
        return f"a {schema['$ref'].rsplit('/', 1)[1]} object (see /openapi.json)"
    kind = schema.get("type")
    kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k != "null"]
    null = " or null" if isinstance(kind, list) and "null" in kind else ""
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"]) + null
    kind = kinds[0] if kinds else None
    if kind == "array":
        return "a list of " + re.sub(r"^an? ", "", describe(schema.get("items", {}))) + "s" + null
    if kind in ("integer", "number"):
        word = "a whole number" if kind == "integer" else "a number"
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{word} from {low:g} to {high:g}{null}"
        if low is not None:
            return f"{word} of at least {low:g}{null}"
        return word + null
    if kind == "boolean":
        return "true or false" + null
    if kind == "object":
        names = ", ".join(schema.get("properties", {}))
        return f"an object with {names}" if names else "an object"
    if kind == "string":
        if schema.get("format") == "date-time":
            return "an RFC 3339 date-time with a time zone, e.g. 2026-11-24T10:00:00Z" + null
        if "pattern" in schema:
            return f"text matching {schema['pattern']}{null}"
        if schema.get("minLength"):
            return "non-empty text" + null
        return "text" + null
    return "any JSON value"


def parse_datetime(text: str, where: str) -> datetime:
    """An RFC 3339 date-time; naive times are refused (whose clock would they be on?)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        raise ApiError(
            400,
            f"{where} {text!r} is not a date-time with a time zone",
            field=where,
            allowed=describe({"type": "string", "format": "date-time"}),
        )
    return value


def convert(where: str, schema: Schema, text: str) -> Any:
    """One parameter's text as the value its schema describes; ApiError (400) when it is not one."""
    kind = schema.get("type")
    kind = next(k for k in kind if k != "null") if isinstance(kind, list) else kind

    def bad(reason: str) -> ApiError:
        return ApiError(400, f"{where} {text!r} {reason}", field=where, allowed=describe(schema))

    value: Any = text
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,40}", text):
            raise bad("is not a whole number")
        value = int(text)
    elif kind == "number":
        try:
            value = float(text)
        except ValueError:
            raise bad("is not a number") from None
        if not math.isfinite(value):
            raise bad("is not a finite number")
    elif kind == "boolean":
        if text not in ("true", "false"):
            raise bad("is not true or false")
        value = text == "true"
    elif kind == "string":
        if "enum" in schema and text not in schema["enum"]:
            raise bad("is not allowed")
        if len(text) < schema.get("minLength", 0):
            raise bad("is too short")
        if "pattern" in schema and not re.search(schema["pattern"], text):
            raise bad("is not in the expected form")
        if schema.get("format") == "date-time":
            value = parse_datetime(text, where)
    if kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            raise bad("is too small")
        if "maximum" in schema and value > schema["maximum"]:
            raise bad("is too large")
    return value


def parse_query(route: Route, args: Mapping[bytes, list[bytes]]) -> dict[str, Any]:
    """The query's parameters, checked against the route's declarations; defaults filled in."""
    declared = {p.name: p for p in route.params if p.where == "query"}
    values: dict[str, Any] = {}
    for raw_name, raw_values in args.items():
        name = _text(raw_name, "query parameter name")
        param = declared.get(name)
        if param is None:
            raise ApiError(
                400,
                f"unknown query parameter {name!r}",
                field=f"query.{name}",
                allowed=", ".join(declared) or "no query parameters",
            )
        texts = [_text(v, f"query.{name}") for v in raw_values]
        where = f"query.{name}"
        if param.schema.get("type") == "array":
            values[name] = [convert(where, param.schema["items"], t) for t in texts]
        elif len(texts) > 1:
            raise ApiError(400, f"{where} given {len(texts)} times", field=where, allowed="one value")
        else:
            values[name] = convert(where, param.schema, texts[0])
    for name, param in declared.items():
        if name not in values:
            if param.required:
                raise ApiError(
                    400, f"query.{name} is required", field=f"query.{name}", allowed=describe(param.schema)
                )
            values[name] = param.schema.get("default")
    return values


def parse_path(route: Route, raw: Mapping[str, str]) -> dict[str, Any]:
    params = {p.name: p for p in route.params if p.where == "path"}
    return {name: convert(f"path.{name}", params[name].schema, text) for name, text in raw.items()}


#: what text the API takes: UTF-8 without NUL, which no database column can hold
TEXT_RULE = "UTF-8 text without NUL characters"


def _text(raw: bytes, where: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, f"{where} is not UTF-8", field=where, allowed=TEXT_RULE) from None
    check_text(text, where)
    return text


def check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise ApiError(400, f"{where} contains a NUL character", field=where, allowed=TEXT_RULE)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON \\ud800 escape
        raise ApiError(400, f"{where} is not valid Unicode text", field=where, allowed=TEXT_RULE) from None


def check_texts(value: Any, where: str = "body") -> None:
    """Every string of a JSON document (keys too) is text a database can store."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_texts(item, f"{where}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, where)
            check_texts(item, f"{where}.{key}")


# --- bodies ------------------------------------------------------------------------------------

#: arrays and objects in one another, at most, in a JSON body (the deepest the API takes is 5)
MAX_DEPTH = 32
#: digits of a JSON integer, at most (an unsignedLong has 20; as for integer parameters)
MAX_DIGITS = 40


class BadJson(ValueError):
    """A JSON text the API does not take, and why in words."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BadJson(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_DIGITS})")
    return int(text)


def _number(text: str) -> float | int:
    """A JSON number with a fraction or exponent; 3.0 is the integer 3, as JSON Schema counts it (and
    as the store needs it). One a float cannot hold (1e999) is refused, not made infinite."""
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is out of range")
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _constant(name: str) -> Any:
    raise BadJson(f"{name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose every key is given once: with two, which one counts depends on who reads it."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise BadJson(f"the key {key[:40]!r} is given twice")
        found[key] = value
    return found


def _depth(document: Any) -> int:
    """How deep arrays and objects go in a parsed document (without recursion)."""
    deepest, level = 0, [(document, 1)]
    while level:
        value, depth = level.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    return depth + 1
                level.append((child, depth + 1))
        deepest = max(deepest, depth)
    return deepest if isinstance(document, dict | list) else 0


def parse_json(data: bytes | str) -> Any:
    """A JSON text as the API takes it: UTF-8 (a BOM is ignored), RFC 8259 numbers that fit (no
    NaN or Infinity, no 1e999, integers of MAX_DIGITS digits at most), each key once per object,
    at most MAX_DEPTH levels. BadJson says what is wrong; nothing else is raised."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise BadJson(f"not UTF-8 (byte {e.start})") from None
    try:
        document = json.loads(
            text, parse_int=_int, parse_float=_number, parse_constant=_constant, object_pairs_hook=_object
        )
    except RecursionError:
        raise BadJson(f"nested more than {MAX_DEPTH} levels deep") from None
    except BadJson:
        raise
    except ValueError as e:
        raise BadJson(str(e)) from None
    if _depth(document) > MAX_DEPTH:
        raise BadJson(f"nested more than {MAX_DEPTH} levels deep")
    return document


_URI = "urn:acs:openapi"
_REGISTRY = referencing.Registry().with_resource(
    _URI,
    referencing.Resource.from_contents(
        {"components": {"schemas": COMPONENTS}}, referencing.jsonschema.DRAFT202012
    ),
)


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{name}"}, registry=_REGISTRY)


def check_body(name: str, body: Any) -> Any:
    """The body, valid against the component schema ``name``, or ApiError naming what is wrong."""
    errors = list(_validator(name).iter_errors(body))
    if not errors:
        return body
    error = _explain(max(errors, key=jsonschema.exceptions.relevance))
    where = "body" + "".join(f".{p}" for p in error.absolute_path)
    # the stubs allow these unset (an error made by hand); iter_errors sets them all
    value: Any = error.validator_value
    schema = cast(Schema, error.schema)
    instance: Any = error.instance
    if error.validator == "required":
        missing = next((p for p in value if p not in instance), "")
        prop = schema.get("properties", {}).get(missing, {})
        raise ApiError(
            400, f"{where}.{missing} is required", field=f"{where}.{missing}", allowed=describe(prop)
        )
    if error.validator == "not" and list(value) == ["required"]:  # "leave X out"
        present = [p for p in value["required"] if p in instance]
        field = f"{where}.{present[0]}" if present else where
        raise ApiError(
            400, f"{field} is not allowed here", field=field, allowed=schema.get("description", "none")
        )
    if error.validator == "additionalProperties":
        known = list(schema.get("properties", {}))
        extra = sorted(set(instance) - set(known))
        raise ApiError(
            400,
            f"{where} has unknown properties {', '.join(extra)}",
            field=f"{where}.{extra[0]}" if extra else where,
            allowed=", ".join(known),
        )
    raise ApiError(400, f"{where}: {error.message}", field=where, allowed=describe(schema))


def _kind_of(branch: Schema) -> Any:
    return branch.get("properties", {}).get("kind", {}).get("const")


def _explain(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The error that says what is wrong. In a choice by ``kind`` (``schemas.by_kind``), the errors
    of the branch of the body's own kind, or the kind itself when no branch has it."""
    while error.context:
        branches: Any = error.validator_value if error.validator == "oneOf" else []
        kinds = [_kind_of(b) for b in branches]
        if kinds and all(kinds) and isinstance(error.instance, dict):
            where = "body" + "".join(f".{p}" for p in error.absolute_path)
            kind = cast(dict[str, Any], error.instance).get("kind")
            if kind not in kinds:
                given = "is required" if kind is None else f"{kind!r} is not a kind this takes"
                raise ApiError(
                    400, f"{where}.kind {given}", field=f"{where}.kind", allowed=describe({"enum": kinds})
                )
            mine = [e for e in error.context if e.relative_schema_path[0] == kinds.index(kind)]
            error = max(mine, key=jsonschema.exceptions.relevance)
            continue
        smallest = heapq.nsmallest(2, error.context, key=jsonschema.exceptions.relevance)
        if len(smallest) == 2 and jsonschema.exceptions.relevance(
            smallest[0]
        ) == jsonschema.exceptions.relevance(smallest[1]):
            return error
        error = smallest[0]
    return error
