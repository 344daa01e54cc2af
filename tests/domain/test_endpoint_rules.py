"""Pure endpoint rules: no database, no HTTP."""

from __future__ import annotations

import msgspec
import pytest

from sipline.api.models import CreateSipEndpointRequest, SipEndpoint, UpdateSipEndpointRequest
from sipline.domain import endpoint
from sipline.domain.errors import ValidationFailed

PROFILE = {"default_codecs": ["OPUS"], "default_ciphers": ["AEAD_AES_256_GCM_8"], "default_encryption": "required"}


def test_documented_request_bodies_list_exactly_the_writable_fields() -> None:
    fields = set(endpoint.RULES)
    assert {f.name for f in msgspec.structs.fields(UpdateSipEndpointRequest)} == fields
    assert {f.name for f in msgspec.structs.fields(CreateSipEndpointRequest)} == fields


def test_response_shape_lists_every_stored_field() -> None:
    shown = {f.name for f in msgspec.structs.fields(SipEndpoint)}
    assert set(endpoint.STORED) <= shown
    assert "password" not in shown


@pytest.mark.parametrize(("own", "effective"), [("default", "required"), ("optional", "optional"), (None, "required")])
def test_effective_encryption_falls_back_to_the_profile(own: str | None, effective: str) -> None:
    assert endpoint.effective_encryption({"encryption": own}, PROFILE) == effective


def test_empty_lists_are_stored_as_follow_the_profile() -> None:
    record, _ = endpoint.change({**endpoint.empty_record(), "codecs": ["PCMU"]}, {"codecs": []})
    assert record["codecs"] is None
    assert endpoint.view({**record, "id": "x"}, "x", PROFILE)["codecs"] == ["OPUS"]


def test_clearing_the_handler_target_is_refused_while_the_handler_needs_it() -> None:
    current = {**endpoint.empty_record(), "call_handler": "relay_topic", "call_relay_topic": "office"}
    with pytest.raises(ValidationFailed) as exc:
        endpoint.change(current, {"call_relay_topic": ""})
    assert [p.attribute for p in exc.value.problems] == ["call_relay_topic"]
    record, _ = endpoint.change(current, {"call_relay_topic": "", "call_handler": None})
    assert record["call_handler"] is None
