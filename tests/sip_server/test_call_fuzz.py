"""Whatever a device sends into a live call, the engine answers or drops it: no exception, no error
logged, and the call still ends cleanly, leaving nothing behind. Generated and mutated in-dialog
messages (real Call-ID and tags, random methods, CSeqs, bodies, bytes) over a real socket."""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sip_server.ua import OFFER
from tests.sip_server.world import World, answered_call

REQUEST = (
    "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n"
    "Max-Forwards: {hops}\r\nFrom: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {cseq_method}\r\n"
    "Contact: <sip:fuzz@127.0.0.1:{port}>\r\n{extra}Content-Length: {length}\r\n\r\n{body}"
)


@st.composite
def in_dialog(draw: st.DrawFn) -> dict[str, object]:
    method = draw(
        st.sampled_from(["ACK", "BYE", "CANCEL", "INFO", "UPDATE", "OPTIONS", "INVITE", "PRACK", "REFER", "NOTIFY"])
    )
    body = draw(st.sampled_from(["", OFFER, "v=0\r\nm=audio x", OFFER.replace("RTP/AVP", "RTP/SAVP"), "Signal=1\r\n"]))
    return {
        "method": method,
        "cseq_method": draw(st.sampled_from([method, method, "INVITE", "BYE"])),
        "cseq": draw(st.integers(0, 2**32)),
        "hops": draw(st.sampled_from([70, 1, 0])),
        "branch": draw(st.text("abcdef0123456789", min_size=1, max_size=12)),
        "tags": draw(st.sampled_from(["right", "swapped", "unknown", "missing"])),
        "extra": draw(
            st.sampled_from(
                ["", "Content-Type: application/sdp\r\n", "Content-Type: text/plain\r\n", "Require: 100rel\r\n"]
            )
        ),
        "length_delta": draw(st.sampled_from([0, 0, 0, -2, 7])),
        "body": body,
        "mutations": draw(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(batch=st.lists(in_dialog(), min_size=1, max_size=6))
async def test_garbage_in_a_live_call_never_breaks_the_engine(world: World, caplog, batch: list[dict[str, object]]):
    caplog.set_level(logging.WARNING, logger="sipline")
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller, callee, _ = await answered_call(alice, bob)
        for item in batch:
            tags = {
                "right": (caller.local_tag, caller.remote_tag),
                "swapped": (caller.remote_tag, caller.local_tag),
                "unknown": ("nope", "nada"),
                "missing": (caller.local_tag, None),
            }[str(item["tags"])]
            to = f"<{bob.aor}>" + (f";tag={tags[1]}" if tags[1] else "")
            body = str(item["body"])
            text = REQUEST.format(
                method=item["method"], uri=caller.remote_target, port=alice.port, branch=item["branch"],
                hops=item["hops"], from_=f"<{alice.aor}>;tag={tags[0]}", to=to, call_id=caller.call_id,
                cseq=item["cseq"], cseq_method=item["cseq_method"], extra=item["extra"],
                length=max(0, len(body.encode()) + int(item["length_delta"])), body=body,  # type: ignore[call-overload]
            )  # fmt: skip
            data = bytearray(text.encode())
            for at, value in item["mutations"]:  # type: ignore[attr-defined]
                data[at % len(data)] = value
            alice.send(bytes(data))
        # Whatever happened, the call can be ended (or has been) and then nothing is left behind.
        alice.in_dialog(caller, "BYE")
        await _settle(world)
        for ua in (alice, bob):
            while not ua.received.empty():
                message = ua.received.get_nowait()
                if getattr(message, "method", None) == "BYE":
                    ua.send(ua.reply(message, 200, "OK"))  # type: ignore[arg-type]
        del callee
    await _settle(world)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
    engine = world.server.service.calls
    assert not engine.calls and not engine.dialogs


async def _settle(world: World) -> None:
    """Until the engine has no call left (each message above is handled within a few rounds)."""
    import asyncio

    engine = world.server.service.calls
    for _ in range(500):
        if not engine.calls:
            break
        await asyncio.sleep(0.01)
    await engine.records.flush()
