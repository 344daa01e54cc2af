"""Request bodies in the OpenAPI document.

Handlers read bodies themselves (JSON or form, every problem reported at once), so Litestar cannot
see their type; this attaches the msgspec Struct's JSON Schema to the operation instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

_KEYS = {
    "anyOf": "any_of",
    "minLength": "min_length",
    "maxLength": "max_length",
    "additionalProperties": "additional_properties",
}


def _schema(node: dict[str, Any]) -> Schema:
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            kwargs["type"] = OpenAPIType(value)
        elif key == "properties":
            kwargs["properties"] = {k: _schema(v) for k, v in value.items()}
        elif key == "items":
            kwargs["items"] = _schema(value)
        elif key == "anyOf":
            kwargs["any_of"] = [_schema(v) for v in value]
        elif key in ("required", "enum", "title", "description", "default", "format"):
            kwargs[key] = value
        elif key in _KEYS:
            kwargs[_KEYS[key]] = value
    return Schema(**kwargs)


def struct_schema(struct: type) -> Schema:
    (ref,), components = msgspec.json.schema_components([struct], ref_template="{name}")
    node = dict(components[ref["$ref"]])
    node.pop("additionalProperties", None)
    schema = _schema(node)
    schema.additional_properties = False
    return schema


def documented_body(struct: type) -> type[Operation]:
    """An Operation class whose request body is `struct`, in JSON and in form encoding."""
    schema = struct_schema(struct)

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=True,
                content={
                    "application/json": OpenAPIMediaType(schema=schema),
                    "application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema),
                },
            )

    return _Operation
