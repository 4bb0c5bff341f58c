"""Request guards that run before any view: ids that fit the database, bounded pages, and JSON bodies
without NUL characters, lone surrogates or absurd nesting (each would otherwise reach PostgreSQL or the
parser and end as a 500).

- ``<int:…>`` path segments match only 0 … 2^31-1 (the id columns are 32-bit), so a bigger id is a 404;
- a chunked body over ``MAX_CONTENT_LENGTH`` is a 413 (not a 400 from parsing the cut-off body);
- ``page`` above ``MAX_PAGE`` is a 422 naming ``page``;
- a JSON body nested deeper than ``MAX_JSON_DEPTH`` is a 400, found by a scan of the raw bytes before the body
  is parsed (and before any ownership check);
- a JSON string (key or value) holding U+0000 or a lone surrogate is a 422 naming the field path.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, request
from flask_smorest import Api
from marshmallow import fields, validate
from werkzeug.routing import IntegerConverter

from app.api.errors import api_abort

logger = logging.getLogger(__name__)

MAX_INT32 = 2**31 - 1
MAX_PAGE = 1_000_000
MAX_JSON_DEPTH = 32

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


class Int32Converter(IntegerConverter):
    """``<int:id>`` limited to what a PostgreSQL ``integer`` column holds."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_INT32)
        super().__init__(map, *args, **kwargs)


def record_id_field(**kwargs: Any) -> fields.Integer:
    """An id in a JSON body: 1 … 2^31-1 (a bigger one would reach PostgreSQL's ``integer`` columns and fail)."""
    return fields.Integer(validate=validate.Range(min=1, max=MAX_INT32), **kwargs)


def install_converters(app: Flask, api: Api) -> None:
    """Make ``int`` path segments 32-bit (call before any route is added) and document them so."""
    app.url_map.converters["int"] = Int32Converter
    api.register_converter(Int32Converter, lambda _converter: {"type": "integer", "minimum": 0,
                                                               "maximum": MAX_INT32})


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped); linear in the body."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def first_bad_string(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, problem) of the first string in a parsed JSON value with U+0000 or a lone surrogate."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            match = _BAD_CHARS.search(item)
            if match:
                what = "a NUL character (U+0000)" if match.group() == "\x00" else "a lone UTF-16 surrogate"
                return where or "_schema", f"Contains {what}, which text fields cannot hold."
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                if _BAD_CHARS.search(str(key)):
                    return child_path, "The key contains a NUL character or a lone surrogate."
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{where}.{i}" if where else str(i), child) for i, child in enumerate(item))
    return None


def check_streamed_body_size() -> None:
    """413 for a chunked body over MAX_CONTENT_LENGTH: werkzeug stops reading such a stream at the limit
    without saying so, so the truncated body would otherwise fail to parse (a 400)."""
    limit = request.max_content_length
    if request.content_length is not None or limit is None or "chunked" not in request.headers.get(
            "Transfer-Encoding", "").lower():
        return
    if len(request.get_data(cache=True, parse_form_data=False)) >= limit:
        api_abort(413, f"The request body is larger than the limit of {limit} bytes.",
                  errors={"file" if request.mimetype == "multipart/form-data" else "json": ["Too large."]})


def register_request_guards(app: Flask) -> None:
    """Check page numbers and JSON bodies of every request before its view runs."""

    @app.before_request
    def guard_request() -> None:
        page = request.args.get("page")
        if page is not None and page.strip().lstrip("+").isdigit() and int(page) > MAX_PAGE:
            api_abort(422, f"page must be at most {MAX_PAGE}.", errors={"query": {"page": [
                f"Must be greater than or equal to 1 and less than or equal to {MAX_PAGE}."]}})
        check_streamed_body_size()
        if not request.is_json or request.method in ("GET", "HEAD", "OPTIONS"):
            return
        body = request.get_data(cache=True)
        if not body:
            return
        if json_depth(body) > MAX_JSON_DEPTH:
            api_abort(400, f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.",
                      errors={"json": [f"Nesting deeper than {MAX_JSON_DEPTH} levels."]})
        data = request.get_json(silent=True)
        bad = first_bad_string(data) if data is not None else None
        if bad is not None:
            field, problem = bad
            api_abort(422, f"Field '{field}': {problem}", errors={"json": {field: [problem]}})
