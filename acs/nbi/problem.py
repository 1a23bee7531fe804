"""The API's one error type, answered as an RFC 9457 problem (``application/problem+json``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

CONTENT_TYPE = "application/problem+json"


class ApiError(Exception):
    """A request the API refuses: the status, what was wrong, which field and what is allowed.

    ``field`` is ``header.Authorization``, ``method``, ``path.NAME``, ``query.NAME`` or
    ``body.NAME`` (dotted into nested objects); every 4xx names one.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        allowed: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.allowed = allowed
        self.headers = headers or {}
        #: more members of the problem (``problems`` of a refused profile)
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            problem["field"] = self.field
        if self.allowed is not None:
            problem["allowed"] = self.allowed
        return problem | self.extra


def not_found(what: str, key: Any, field: str, allowed: str) -> ApiError:
    return ApiError(404, f"no {what} {key!r}", field=field, allowed=allowed)
