"""JSON in and out, shaped as Salesforce's REST API shapes it, for every API area.

Salesforce answers UTF-8 JSON and reports a failed request as a list of
`{"errorCode", "message"}`; building those here keeps every endpoint's answers alike.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devkit.salesforce_emulator.schema import ApiError, RequestError

_JSON = "application/json"

# An API resource handler: the request, its API version, and the decoded path parts after
# /services/data/vXX.X/.
Handler = Callable[[web.Request, float, list[str]], Awaitable[web.Response]]


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=_JSON,
        charset="UTF-8",
    )


def error_response(status: int, *errors: ApiError) -> web.Response:
    return json_response([e.as_top_level() for e in errors], status)


def not_found() -> web.Response:
    return error_response(404, ApiError("NOT_FOUND", "The requested resource does not exist"))


def method_not_allowed(method: str, allowed: str) -> web.Response:
    return error_response(
        405,
        ApiError(
            "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
        ),
    )


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; a body that is not JSON is a JSON_PARSER_ERROR."""
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(
            400, ApiError("JSON_PARSER_ERROR", f"Unexpected character: {exc}")
        ) from None
