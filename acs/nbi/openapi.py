"""The OpenAPI 3.1 document, written from the route table (``acs.nbi.api.router``).

Served at ``/openapi.json``. Parameters, bodies and responses are the declarations the
server checks requests by, so the document and the behaviour cannot drift apart; the
property-based test in ``tests/nbi`` checks the rest (no 5xx, every answer in its schema).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from acs import __version__
from acs.nbi.api import router
from acs.nbi.problem import CONTENT_TYPE as PROBLEM_TYPE
from acs.nbi.routing import ROLE_HELP, Response, Route
from acs.nbi.schemas import COMPONENTS, ref

JSON = "application/json"
XML = "application/xml"
#: an XML document (a Cisco flat profile), as text
XML_TEXT = {"type": "string", "description": "A Cisco XML flat profile."}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": (route.description + "\n\n" if route.description else "")
        + f"Role: {route.role} or above.",
        "tags": [route.path.split("/")[1]],
        "x-acs-role": route.role,
        "security": [{"bearer": []}],
    }
    params = []
    for p in route.params:
        param: dict[str, Any] = {"name": p.name, "in": p.where, "required": p.required or p.where == "path"}
        param |= {"description": p.description, "schema": p.schema}
        if p.schema.get("type") == "array":
            param |= {"style": "form", "explode": True}
        params.append(param)
    if params:
        op["parameters"] = params
    if route.body is not None:
        content: dict[str, Any] = {JSON: {"schema": {"$ref": f"#/components/schemas/{route.body}"}}}
        if route.xml_body is not None:
            content[XML] = {"schema": XML_TEXT}
        op["requestBody"] = {"required": not route.body_optional, "content": content}
    op["responses"] = {}
    answers = dict(route.responses)
    if route.body is not None:
        answers[413] = Response("The body is over the size limit.", ref("Problem"))
        takes = JSON + (f" or {XML}" if route.xml_body is not None else "")
        answers[415] = Response(f"The body is not {takes}.", ref("Problem"))
    for status, response in sorted(answers.items()):
        answer: dict[str, Any] = {"description": response.description}
        if response.schema is not None:
            media = PROBLEM_TYPE if status >= 400 else JSON
            answer["content"] = {media: {"schema": response.schema}}
            if response.xml:
                answer["content"][XML] = {"schema": XML_TEXT}
        if response.headers:
            answer["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in response.headers.items()
            }
        op["responses"][str(status)] = answer
    return op


@functools.cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "acs northbound API",
            "version": __version__,
            "description": (
                "Devices, tasks, jobs, faults, policies and Cisco flat profiles of the acs TR-069 ACS, as "
                "JSON (profiles also as application/xml, by Content-Type and Accept). Every request "
                "but this document's carries `Authorization: Bearer <token>` (make one with `acs token "
                f"create --role ROLE --name NAME`). Roles: {ROLE_HELP}. Errors are RFC 9457 problems "
                "(application/problem+json) whose `field` names what was wrong and `allowed` what is "
                "accepted. Lists are pages (`limit`, `offset`); times are RFC 3339 in UTC. Text is UTF-8 "
                "and never contains NUL characters (no database stores them): such a request gets 400."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An acs API token."}
            },
        },
    }


@functools.cache
def document_bytes() -> bytes:
    return json.dumps(document(), indent=1).encode()
