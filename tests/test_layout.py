"""The package's seams, held by tests: the SIP core is a leaf, the vocabularies have one home."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec

import sipline
from sipline.api import models
from sipline.domain import values
from sipline.store import schema

PACKAGE = Path(sipline.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)[: -node.level]
                names.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                names.add(node.module)
    return names


def test_the_sip_core_imports_nothing_else_of_sipline():
    for path in sorted((PACKAGE / "sip").rglob("*.py")):
        outside = {name for name in _imports(path) if name.startswith("sipline") and not name.startswith("sipline.sip")}
        assert not outside, f"{path.relative_to(PACKAGE)} imports {sorted(outside)}: sipline.sip must stay a leaf"


def test_the_sip_core_has_no_sockets_or_event_loop():
    for path in sorted((PACKAGE / "sip").rglob("*.py")):
        io = _imports(path) & {"socket", "asyncio", "ssl", "selectors"}
        assert not io, f"{path.relative_to(PACKAGE)} imports {sorted(io)}: the core is sans-IO"


def test_every_vocabulary_value_round_trips_through_the_api_models():
    cases = {
        "codecs": [list(values.CODECS)],
        "ciphers": [list(values.CIPHERS)],
        "encryption": list(values.ENDPOINT_ENCRYPTION),
        "call_handler": list(values.CALL_HANDLERS),
        "call_request_method": list(values.HTTP_METHODS),
        "call_flow_version": list(values.CALL_FLOW_VERSIONS),
    }
    base = {name: None for name in models.SipEndpoint.__struct_fields__}
    base |= {"type": "sip_endpoint", "id": "x", "username": "u", "ciphers": [], "codecs": [], "encryption": "default"}
    for field, choices in cases.items():
        for choice in choices:
            assert msgspec.convert({**base, field: choice}, models.SipEndpoint)  # a GET can show it
            msgspec.convert({field: choice}, models.UpdateSipEndpointRequest)  # the docs accept it


def test_every_handler_names_the_field_it_requires():
    assert tuple(values.HANDLER_REQUIRES) == values.CALL_HANDLERS
    columns = {c.name for c in schema.sip_endpoints.columns}
    assert {field for field in values.HANDLER_REQUIRES.values() if field} <= columns


def test_columns_are_wide_enough_for_every_value():
    widths = {
        "encryption": values.ENDPOINT_ENCRYPTION,
        "call_handler": values.CALL_HANDLERS,
        "call_request_method": values.HTTP_METHODS,
        "call_fallback_method": values.HTTP_METHODS,
        "call_status_callback_method": values.HTTP_METHODS,
        "call_flow_version": values.CALL_FLOW_VERSIONS,
    }
    for column, choices in widths.items():
        length = schema.sip_endpoints.c[column].type.length  # type: ignore[attr-defined]
        assert max(map(len, choices)) <= length, column
    assert max(map(len, values.PROFILE_ENCRYPTION)) <= schema.projects.c.default_encryption.type.length  # type: ignore[attr-defined]
