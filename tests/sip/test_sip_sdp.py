"""SDP parsing and the media policy a signalling-only B2BUA applies to offers and answers."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.sip import (
    Media,
    MediaPolicy,
    Refusal,
    SdpError,
    SessionDescription,
    filter_sdp,
    is_active,
    is_secure,
    parse_sdp,
    serialize_sdp,
)

CODECS = ("OPUS", "G722", "PCMU", "PCMA", "VP8", "H264")
CIPHERS = (
    "AEAD_AES_256_GCM_8",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AES_CM_128_HMAC_SHA1_32",
)


def policy(codecs: tuple[str, ...] = CODECS, ciphers: tuple[str, ...] = CIPHERS, encryption: str = "optional"):
    return MediaPolicy(codecs, ciphers, encryption)


ANY = policy()


def body(text: str) -> bytes:
    """The SDP as a phone sends it: one line per line of `text`, CRLF line ends."""
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines()).encode()


BARESIP = body("""
    v=0
    o=- 1433832402 3051522003 IN IP4 192.168.1.50
    s=-
    c=IN IP4 192.168.1.50
    t=0 0
    m=audio 10104 RTP/AVP 0 8 101
    b=AS:64
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=sendrecv
    a=label:1
    a=ssrc:2148351213 cname:9e7a0e3c-1f1d-4a1b-a2bb-3b5c0d6f7a10
    a=rtcp-rsize
    a=ptime:20
""")

LINPHONE = body("""
    v=0
    o=bob 3912345678 3912345678 IN IP4 192.0.2.20
    s=Talk
    c=IN IP4 192.0.2.20
    b=AS:117
    t=0 0
    a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
    m=audio 4000 RTP/AVP 96 9 0 101 13
    b=TIAS:96000
    a=rtcp:4001 IN IP4 192.0.2.20
    a=rtpmap:96 opus/48000/2
    a=fmtp:96 useinbandfec=1
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
    a=rtcp-fb:96 nack
    a=rtcp-fb:* trr-int 1000
    a=rtcp-mux
""")

SRTP = body("""
    v=0
    o=carol 2890844526 2890842807 IN IP4 192.0.2.30
    s=-
    c=IN IP4 192.0.2.30
    t=0 0
    m=audio 7078 RTP/SAVP 0 8 101
    a=rtpmap:101 telephone-event/8000
    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4
    a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4
    a=sendrecv
""")

FINGERPRINT = (
    "a=fingerprint:sha-256 "
    "D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F"
)

WEBRTC = body(f"""
    v=0
    o=- 4611731400430051336 2 IN IP4 127.0.0.1
    s=-
    t=0 0
    a=group:BUNDLE 0 1
    a=extmap-allow-mixed
    a=msid-semantic: WMS stream
    m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
    c=IN IP4 0.0.0.0
    a=rtcp:9 IN IP4 0.0.0.0
    a=ice-ufrag:F7gI
    a=ice-pwd:x9cml/YzichV2+XlhiMu8g1k
    a=ice-options:trickle
    {FINGERPRINT}
    a=setup:actpass
    a=mid:0
    a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
    a=sendrecv
    a=msid:stream audio0
    a=rtcp-mux
    a=rtpmap:111 opus/48000/2
    a=rtcp-fb:111 transport-cc
    a=fmtp:111 minptime=10;useinbandfec=1
    a=rtpmap:63 red/48000/2
    a=fmtp:63 111/111
    a=rtpmap:9 G722/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:13 CN/8000
    a=rtpmap:110 telephone-event/48000
    a=rtpmap:126 telephone-event/8000
    a=ssrc:1001 cname:4TOk42mSjXCkVIa6
    m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 116 117 118
    c=IN IP4 0.0.0.0
    a=rtcp:9 IN IP4 0.0.0.0
    a=ice-ufrag:F7gI
    a=ice-pwd:x9cml/YzichV2+XlhiMu8g1k
    a=ice-options:trickle
    {FINGERPRINT}
    a=setup:actpass
    a=mid:1
    a=sendrecv
    a=msid:stream video0
    a=rtcp-mux
    a=rtcp-rsize
    a=rtpmap:96 VP8/90000
    a=rtcp-fb:96 goog-remb
    a=rtcp-fb:96 nack
    a=rtcp-fb:96 nack pli
    a=rtpmap:97 rtx/90000
    a=fmtp:97 apt=96
    a=rtpmap:102 H264/90000
    a=rtcp-fb:102 goog-remb
    a=rtcp-fb:102 nack pli
    a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
    a=rtpmap:103 rtx/90000
    a=fmtp:103 apt=102
    a=rtpmap:116 red/90000
    a=rtpmap:117 rtx/90000
    a=fmtp:117 apt=116
    a=rtpmap:118 ulpfec/90000
    a=rtcp-fb:* ccm fir
    a=ssrc-group:FID 2001 2002
    a=ssrc:2001 cname:4TOk42mSjXCkVIa6
    a=ssrc:2002 cname:4TOk42mSjXCkVIa6
""")

AUDIO_AND_H264 = body("""
    v=0
    o=- 20518 0 IN IP4 192.0.2.40
    s=SIP Call
    c=IN IP4 192.0.2.40
    t=0 0
    m=audio 5004 RTP/AVP 0 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    m=video 5006 RTP/AVP 99 100
    b=AS:384
    a=rtpmap:99 H264/90000
    a=fmtp:99 profile-level-id=42e01f;packetization-mode=1
    a=rtpmap:100 H263-1998/90000
    a=fmtp:100 CIF=1;QCIF=1
    a=rtcp-fb:* nack pli
""")

PHONES = [BARESIP, LINPHONE, SRTP, WEBRTC, AUDIO_AND_H264]


def sdp(data: bytes) -> SessionDescription:
    return parse_sdp(data)


def passed(result: SessionDescription | Refusal) -> SessionDescription:
    assert isinstance(result, SessionDescription), result
    return result


def refused(result: SessionDescription | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    assert result.status == 488
    return result


def lines_of(media: Media, prefix: str) -> list[str]:
    return [line for line in media.lines if line.startswith(prefix)]


# --- Parsing and serializing ---------------------------------------------------------------------


@pytest.mark.parametrize("data", PHONES)
def test_serializing_a_parsed_sdp_gives_back_the_same_bytes(data):
    assert serialize_sdp(parse_sdp(data)) == data


@pytest.mark.parametrize("data", PHONES)
def test_lf_line_ends_and_a_missing_final_line_end_parse_like_crlf(data):
    assert parse_sdp(data.replace(b"\r\n", b"\n")) == parse_sdp(data)
    assert parse_sdp(data.removesuffix(b"\r\n")) == parse_sdp(data)


def test_blank_lines_after_the_last_line_are_tolerated():
    assert parse_sdp(BARESIP + b"\r\n\r\n") == parse_sdp(BARESIP)


def test_parse_splits_session_lines_from_media_sections():
    parsed = parse_sdp(AUDIO_AND_H264)
    assert parsed.session == ("v=0", "o=- 20518 0 IN IP4 192.0.2.40", "s=SIP Call", "c=IN IP4 192.0.2.40", "t=0 0")
    audio, video = parsed.media
    assert audio == Media(
        "audio",
        5004,
        None,
        "RTP/AVP",
        ("0", "101"),
        ("a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"),
    )
    assert (video.kind, video.port, video.formats, video.lines[0]) == ("video", 5006, ("99", "100"), "b=AS:384")


def test_port_count_is_kept():
    parsed = parse_sdp(b"v=0\r\nm=audio 49170/2 RTP/AVP 0\r\n")
    assert (parsed.media[0].port, parsed.media[0].port_count) == (49170, 2)
    assert serialize_sdp(parsed) == b"v=0\r\nm=audio 49170/2 RTP/AVP 0\r\n"


def test_non_rtp_formats_are_any_tokens():
    parsed = parse_sdp(b"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nm=image 6000 udptl t38\r\n")
    assert [m.formats for m in parsed.media] == [("webrtc-datachannel",), ("t38",)]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"o=- 1 1 IN IP4 h\r\nv=0\r\n", id="v-not-first"),
        pytest.param(b"v=1\r\n", id="v-not-0"),
        pytest.param(b"\xef\xbb\xbfv=0\r\n", id="byte-order-mark"),
        pytest.param(b"v=0\r\ns=\xff\r\n", id="not-utf-8"),
        pytest.param(b"v=0\r\ns=a\x00b\r\n", id="nul"),
        pytest.param(b"v=0\r\ns=a\x1bb\r\n", id="escape"),
        pytest.param(b"v=0\rs=-\r", id="cr-only-line-ends"),
        pytest.param(b"v=0\r\ns=-\r\r\n", id="stray-cr"),
        pytest.param(b"v=0\r\n\r\ns=-\r\n", id="blank-line-inside"),
        pytest.param(b"v=0\r\nsession\r\n", id="no-equals"),
        pytest.param(b"v=0\r\n1=x\r\n", id="type-not-a-letter"),
        pytest.param(b"v=0\r\ns =x\r\n", id="space-before-equals"),
        pytest.param(b"v=0\r\nm=audio\r\n", id="m-without-fields"),
        pytest.param(b"v=0\r\nm=audio 4000 RTP/AVP\r\n", id="m-without-formats"),
        pytest.param(b"v=0\r\nm=audio 65536 RTP/AVP 0\r\n", id="port-out-of-range"),
        pytest.param(b"v=0\r\nm=audio 99999999999999999999 RTP/AVP 0\r\n", id="port-huge"),
        pytest.param(b"v=0\r\nm=audio -1 RTP/AVP 0\r\n", id="port-negative"),
        pytest.param(b"v=0\r\nm=audio 04000 RTP/AVP 0\r\n", id="port-leading-zero"),
        pytest.param(b"v=0\r\nm=audio 4000/0 RTP/AVP 0\r\n", id="port-count-zero"),
        pytest.param(b"v=0\r\nm=audio 4000  RTP/AVP 0\r\n", id="double-space"),
        pytest.param(b"v=0\r\nm=audio 4000 RTP/AVP 0 \r\n", id="trailing-space"),
        pytest.param(b"v=0\r\nm=audio 4000 RTP/AVP 128\r\n", id="payload-type-out-of-range"),
        pytest.param(b"v=0\r\nm=audio 4000 RTP/AVP opus\r\n", id="payload-type-not-a-number"),
        pytest.param(b"v=0\r\nm=audio 4000 RTP/AVP \xd9\xa1\r\n", id="payload-type-arabic-digit"),
        pytest.param(b"v=0\r\n" + b"m=audio 0 RTP/AVP 0\r\n" * 65, id="65-media-sections"),
        pytest.param(b"v=0\r\ns=" + b"x" * 65536 + b"\r\n", id="over-64-KiB"),
    ],
)
def test_parse_refuses_what_is_not_sdp_with_sdp_error(data):
    with pytest.raises(SdpError):
        parse_sdp(data)


def test_64_media_sections_are_accepted():
    assert len(parse_sdp(b"v=0\r\n" + b"m=audio 0 RTP/AVP 0\r\n" * 64).media) == 64


def test_serialize_ends_every_line_with_crlf():
    parsed = SessionDescription(("v=0", "s=-"), (Media("audio", 4000, None, "RTP/AVP", ("0", "8"), ("a=ptime:20",)),))
    assert serialize_sdp(parsed) == b"v=0\r\ns=-\r\nm=audio 4000 RTP/AVP 0 8\r\na=ptime:20\r\n"


# --- Codecs --------------------------------------------------------------------------------------


def test_offer_keeps_only_codecs_both_allow_in_offer_order():
    result = passed(filter_sdp(sdp(LINPHONE), policy(("PCMU", "OPUS", "G722")), policy(("PCMU", "OPUS", "VP8"))))
    assert result.media[0].formats == ("96", "0", "101", "13")


def test_dropped_formats_lose_their_rtpmap_fmtp_and_rtcp_fb_lines():
    result = passed(filter_sdp(sdp(LINPHONE), ANY, policy(("G722",))))
    audio = result.media[0]
    assert audio.formats == ("9", "101", "13")
    assert not [line for line in audio.lines if line.startswith(("a=rtpmap:96", "a=fmtp:96", "a=rtcp-fb:96"))]
    assert lines_of(audio, "a=rtpmap:101") == ["a=rtpmap:101 telephone-event/8000"]
    assert lines_of(audio, "a=fmtp:101") == ["a=fmtp:101 0-16"]


def test_rtcp_fb_for_every_format_is_kept():
    result = passed(filter_sdp(sdp(LINPHONE), ANY, policy(("G722",))))
    assert lines_of(result.media[0], "a=rtcp-fb:*") == ["a=rtcp-fb:* trr-int 1000"]


def test_lines_that_belong_to_no_format_are_kept_in_order():
    original = sdp(LINPHONE).media[0]
    result = passed(filter_sdp(sdp(LINPHONE), ANY, policy(("PCMU",)))).media[0]
    assert result.lines == tuple(
        line for line in original.lines if not line.startswith(("a=rtpmap:96", "a=fmtp:96", "a=rtcp-fb:96"))
    )
    assert "a=rtcp-mux" in result.lines


def test_session_lines_including_the_origin_are_unchanged():
    parsed = sdp(LINPHONE)
    assert passed(filter_sdp(parsed, ANY, policy(("PCMU",)))).session == parsed.session


def test_nothing_changes_when_both_allow_everything_offered():
    for data in (BARESIP, LINPHONE, SRTP, WEBRTC):
        assert serialize_sdp(passed(filter_sdp(sdp(data), ANY, ANY))) == data


def test_telephone_event_and_cn_are_kept_with_an_allowed_codec():
    result = passed(filter_sdp(sdp(LINPHONE), ANY, policy(("OPUS",))))
    assert result.media[0].formats == ("96", "101", "13")


def test_static_payload_types_are_matched_without_rtpmap():
    data = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0 8 9 13\r\n"
    assert passed(filter_sdp(sdp(data), ANY, policy(("PCMA", "G722")))).media[0].formats == ("8", "9", "13")
    assert passed(filter_sdp(sdp(data), ANY, policy(("PCMU",)))).media[0].formats == ("0", "13")


def test_static_payload_types_outside_the_vocabulary_are_dropped():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 3 18 0 4\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n"
    result = passed(filter_sdp(sdp(data), ANY, ANY)).media[0]
    assert result.formats == ("0",)
    assert result.lines == ()


def test_codec_names_match_case_insensitively():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 OPUS/48000/2\r\na=rtpmap:97 pcmu/8000\r\n"
    assert passed(filter_sdp(sdp(data), policy(("opus", "PCMU")), policy(("Opus", "pcmu")))).media[0].formats == (
        "96",
        "97",
    )


def test_dynamic_payload_type_without_rtpmap_is_dropped():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 96 0\r\n"
    assert passed(filter_sdp(sdp(data), ANY, ANY)).media[0].formats == ("0",)


def test_rtpmap_wins_over_the_static_assignment():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 opus/48000/2\r\n"
    assert passed(filter_sdp(sdp(data), ANY, policy(("OPUS",)))).media[0].formats == ("0",)


def test_no_codec_in_common_refuses_with_488_naming_offered_and_allowed():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 0 18 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    result = refused(filter_sdp(sdp(data), policy(("OPUS", "PCMU")), policy(("OPUS", "VP8"))))
    assert result.reason == "no codec in common (offered: PCMU, G729; allowed: OPUS)"


def test_policies_with_nothing_in_common_say_none_is_allowed():
    result = refused(filter_sdp(sdp(BARESIP), policy(("PCMU",)), policy(("OPUS",))))
    assert result.reason == "no codec in common (offered: PCMU, PCMA; allowed: none)"


def test_telephone_event_and_cn_alone_are_no_codec_in_common():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 101 13\r\na=rtpmap:101 telephone-event/8000\r\n"
    assert refused(filter_sdp(sdp(data), ANY, ANY)).reason.startswith("no codec in common (offered: none;")


def test_section_without_common_codec_is_rejected_with_port_0_and_one_format():
    result = passed(filter_sdp(sdp(AUDIO_AND_H264), ANY, policy(("PCMU", "VP8"))))
    audio, video = result.media
    assert (audio.port, audio.formats) == (5004, ("0", "101"))
    assert (video.kind, video.port, video.port_count, video.formats) == ("video", 0, None, ("99",))
    assert video.lines == (
        "b=AS:384",
        "a=rtpmap:99 H264/90000",
        "a=fmtp:99 profile-level-id=42e01f;packetization-mode=1",
        "a=rtcp-fb:* nack pli",
    )
    assert parse_sdp(serialize_sdp(result)) == result


def test_m_lines_are_never_removed_or_reordered():
    original = sdp(WEBRTC)
    result = passed(filter_sdp(original, ANY, policy(("PCMU",))))
    assert [(m.kind, m.proto) for m in result.media] == [(m.kind, m.proto) for m in original.media]
    assert [m.port for m in result.media] == [9, 0]


def test_sections_already_rejected_pass_unchanged():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 31 34\r\na=rtpmap:34 H263/90000\r\n"
    result = passed(filter_sdp(sdp(data), ANY, ANY))
    assert result.media[1] == sdp(data).media[1]


def test_non_rtp_sections_pass_unchanged():
    data = (
        b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n"
        b"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:5000\r\n"
        b"m=image 6000 udptl t38\r\na=T38FaxVersion:0\r\n"
    )
    result = passed(filter_sdp(sdp(data), ANY, policy(("PCMU",))))
    assert result.media[1:] == sdp(data).media[1:]


def test_text_over_rtp_is_rejected_as_no_codec_of_the_vocabulary():
    data = b"v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=text 4002 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n"
    assert passed(filter_sdp(sdp(data), ANY, ANY)).media[1].port == 0


def test_no_audio_or_video_at_all_is_refused():
    data = b"v=0\r\nm=image 6000 udptl t38\r\n"
    assert refused(filter_sdp(sdp(data), ANY, ANY)).reason == "no active audio or video stream in the SDP"
    assert refused(filter_sdp(sdp(b"v=0\r\ns=-\r\n"), ANY, ANY)).reason == "no active audio or video stream in the SDP"


def test_the_reason_names_the_first_audio_or_video_section_rejected():
    data = b"v=0\r\nm=text 4002 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\nm=audio 4000 RTP/AVP 18\r\n"
    assert (
        refused(filter_sdp(sdp(data), ANY, ANY)).reason
        == "no codec in common (offered: G729; allowed: OPUS, G722, PCMU, PCMA)"
    )


def test_refusal_reasons_are_safe_in_a_warning_header():
    data = b'v=0\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 x"\\\xc3\xa9' + b"y" * 100 + b"/8000\r\n"
    reason = refused(filter_sdp(sdp(data), ANY, ANY)).reason
    assert reason.isascii() and '"' not in reason and "\\" not in reason
    assert len(reason) < 200


# --- Video repair formats and redundancy ---------------------------------------------------------


def test_rtx_is_kept_only_with_the_codec_it_repairs():
    result = passed(filter_sdp(sdp(WEBRTC), ANY, policy(("OPUS", "VP8"))))
    video = result.media[1]
    assert video.formats == ("96", "97", "116", "117", "118")
    assert not [line for line in video.lines if line.startswith(("a=rtpmap:10", "a=fmtp:10", "a=rtcp-fb:102"))]
    assert "a=fmtp:97 apt=96" in video.lines


def test_rtx_of_a_dropped_codec_goes_with_it():
    result = passed(filter_sdp(sdp(WEBRTC), ANY, policy(("OPUS", "H264"))))
    assert result.media[1].formats == ("102", "103", "116", "117", "118")


def test_red_ulpfec_and_their_rtx_alone_do_not_keep_a_video_section():
    result = passed(filter_sdp(sdp(WEBRTC), ANY, policy(("OPUS",))))
    assert (result.media[1].port, result.media[1].formats) == (0, ("96",))


def test_rtx_without_apt_is_dropped():
    data = b"v=0\r\nm=video 4000 RTP/AVP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n"
    assert passed(filter_sdp(sdp(data), ANY, ANY)).media[0].formats == ("96",)


def test_audio_red_follows_the_codecs_it_carries():
    kept = passed(filter_sdp(sdp(WEBRTC), ANY, policy(("OPUS", "VP8")))).media[0]
    assert kept.formats == ("111", "63", "13", "110", "126")
    without_opus = passed(filter_sdp(sdp(WEBRTC), ANY, policy(("PCMU", "VP8")))).media[0]
    assert without_opus.formats == ("0", "13", "110", "126")


# --- Encryption ----------------------------------------------------------------------------------


def test_crypto_lines_keep_only_suites_both_allow():
    result = passed(filter_sdp(sdp(SRTP), ANY, policy(ciphers=("AES_CM_128_HMAC_SHA1_32", "AEAD_AES_256_GCM_8"))))
    audio = result.media[0]
    assert [line.split()[1] for line in lines_of(audio, "a=crypto:")] == ["AES_CM_128_HMAC_SHA1_32"]
    assert lines_of(audio, "a=crypto:")[0].startswith("a=crypto:2 ")


def test_sdes_section_without_a_common_suite_is_refused_naming_the_suites():
    result = refused(filter_sdp(sdp(SRTP), ANY, policy(ciphers=("AEAD_AES_256_GCM_8",))))
    assert result.reason == (
        "no SRTP crypto suite in common "
        "(offered: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32; allowed: AEAD_AES_256_GCM_8)"
    )


def test_sdes_section_without_a_common_suite_is_rejected_next_to_a_usable_one():
    data = SRTP + b"m=audio 7080 RTP/AVP 0\r\n"
    result = passed(filter_sdp(sdp(data), ANY, policy(ciphers=("AEAD_AES_256_GCM_8",))))
    assert [(m.port, m.formats) for m in result.media] == [(0, ("0",)), (7080, ("0",))]
    assert not lines_of(result.media[0], "a=crypto:")


def test_a_section_rejected_for_its_codecs_keeps_no_keys_of_refused_suites():
    data = SRTP + b"m=audio 7080 RTP/AVP 9\r\n"
    result = passed(filter_sdp(sdp(data), ANY, policy(("G722",), ciphers=("AES_CM_128_HMAC_SHA1_32",))))
    assert [(m.port, m.formats) for m in result.media] == [(0, ("0",)), (7080, ("9",))]
    assert [line.split()[1] for line in lines_of(result.media[0], "a=crypto:")] == ["AES_CM_128_HMAC_SHA1_32"]


def test_required_receiver_refuses_plain_rtp_with_488():
    for data in (BARESIP, LINPHONE, AUDIO_AND_H264):
        result = refused(filter_sdp(sdp(data), ANY, policy(encryption="required")))
        assert result.reason == "the endpoint requires SRTP (RTP/SAVP with a=crypto)"


def test_required_sender_refuses_plain_rtp_with_488():
    refused(filter_sdp(sdp(BARESIP), policy(encryption="required"), ANY))


def test_required_accepts_sdes_with_a_common_suite():
    result = passed(filter_sdp(sdp(SRTP), policy(encryption="required"), policy(encryption="required")))
    assert len(lines_of(result.media[0], "a=crypto:")) == 2


def test_required_refuses_rtp_avp_even_with_crypto_lines():
    data = BARESIP.replace(b"a=ptime:20\r\n", b"a=ptime:20\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd\r\n")
    refused(filter_sdp(sdp(data), ANY, policy(encryption="required")))


def test_optional_passes_plain_rtp_through_with_crypto_lines_filtered():
    data = BARESIP.replace(
        b"a=ptime:20\r\n",
        b"a=ptime:20\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd\r\na=crypto:2 F8_128_HMAC_SHA1_80 inline:ef\r\n",
    )
    audio = passed(filter_sdp(sdp(data), ANY, ANY)).media[0]
    assert (audio.port, audio.proto) == (10104, "RTP/AVP")
    assert lines_of(audio, "a=crypto:") == ["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd"]


def test_dtls_offer_is_secure_and_keeps_fingerprint_and_setup_lines():
    result = passed(filter_sdp(sdp(WEBRTC), ANY, policy(encryption="required")))
    for media in result.media:
        assert lines_of(media, "a=fingerprint:") == [FINGERPRINT]
        assert lines_of(media, "a=setup:") == ["a=setup:actpass"]
    assert serialize_sdp(result) == WEBRTC


def test_session_level_fingerprint_makes_dtls_sections_secure():
    data = body(f"""
        v=0
        o=mozilla...THIS_IS_SDPARTA-99.0 1 0 IN IP4 0.0.0.0
        s=-
        t=0 0
        {FINGERPRINT}
        m=audio 9 UDP/TLS/RTP/SAVPF 109 0
        a=rtpmap:109 opus/48000/2
        a=setup:actpass
    """)
    parsed = sdp(data)
    assert not is_secure(parsed.media[0])
    assert is_secure(parsed.media[0], parsed.session)
    passed(filter_sdp(parsed, ANY, policy(encryption="required")))


def test_dtls_profile_without_fingerprint_is_not_secure():
    data = b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
    assert not is_secure(sdp(data).media[0])
    refused(filter_sdp(sdp(data), ANY, policy(encryption="required")))


@pytest.mark.parametrize(
    ("proto", "line", "secure"),
    [
        ("RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd", True),
        ("RTP/SAVPF", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd", True),
        ("RTP/SAVP", "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:abcd", False),
        ("RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80", False),
        ("RTP/SAVP", "a=sendrecv", False),
        ("RTP/AVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd", False),
        ("UDP/TLS/RTP/SAVPF", FINGERPRINT, True),
        ("UDP/TLS/RTP/SAVP", FINGERPRINT, True),
        ("RTP/AVP", FINGERPRINT, False),
        ("UDP/DTLS/SCTP", FINGERPRINT, False),
    ],
)
def test_is_secure(proto, line, secure):
    assert is_secure(Media("audio", 4000, None, proto, ("0",), (line,))) is secure


def test_required_refuses_an_unencrypted_non_rtp_section():
    data = WEBRTC + b"m=image 6000 udptl t38\r\n"
    refused(filter_sdp(sdp(data), ANY, policy(encryption="required")))
    passed(filter_sdp(sdp(data), ANY, ANY))


def test_required_accepts_a_data_channel_over_dtls():
    data = WEBRTC + b"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:5000\r\n"
    passed(filter_sdp(sdp(data), ANY, policy(encryption="required")))


def test_rejected_sections_need_no_encryption():
    data = SRTP + b"m=video 0 RTP/AVP 31\r\n"
    passed(filter_sdp(sdp(data), ANY, policy(encryption="required")))


def test_answers_are_filtered_by_the_same_rules_in_the_other_direction():
    alice, bob = policy(("OPUS", "PCMU")), policy(("PCMU", "PCMA"), encryption="optional")
    offer = passed(filter_sdp(sdp(LINPHONE), alice, bob))
    assert offer.media[0].formats == ("0", "101", "13")
    answer = sdp(
        body("""
            v=0
            o=- 2 2 IN IP4 192.0.2.2
            s=-
            c=IN IP4 192.0.2.2
            t=0 0
            m=audio 6000 RTP/AVP 0 101
            a=rtpmap:101 telephone-event/8000
        """)
    )
    assert passed(filter_sdp(answer, bob, alice)) == answer
    refused(filter_sdp(answer, bob, policy(("OPUS",))))


# --- Bundle-only sections (RFC 8843) -------------------------------------------------------------

BUNDLE_ONLY = body("""
    v=0
    o=- 1 1 IN IP4 0.0.0.0
    s=-
    t=0 0
    a=group:BUNDLE 0 1
    m=audio 9 RTP/AVP 0
    a=mid:0
    m=video 0 RTP/AVP 96 97
    a=bundle-only
    a=mid:1
    a=rtpmap:96 VP8/90000
    a=rtpmap:97 H264/90000
""")


def test_bundle_only_sections_are_filtered_like_active_ones():
    result = passed(filter_sdp(sdp(BUNDLE_ONLY), ANY, policy(("PCMU", "VP8"))))
    video = result.media[1]
    assert is_active(video)
    assert (video.port, video.formats) == (0, ("96",))
    assert "a=bundle-only" in video.lines


def test_a_rejected_bundle_only_section_loses_bundle_only():
    result = passed(filter_sdp(sdp(BUNDLE_ONLY), ANY, policy(("PCMU",))))
    video = result.media[1]
    assert not is_active(video)
    assert video.lines == ("a=mid:1", "a=rtpmap:96 VP8/90000")


# --- Properties ----------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

ALWAYS = {"TELEPHONE-EVENT", "CN"}
REPAIR = {"RTX", "RED", "ULPFEC", "FLEXFEC-03"}
STATIC = {0: "PCMU", 3: "GSM", 8: "PCMA", 9: "G722", 13: "CN", 18: "G729", 34: "H263"}
ENCODINGS = [
    "opus/48000/2",
    "PCMU/8000",
    "VP8/90000",
    "OPUS/48000/2",
    "G722/8000",
    "PCMU/8000",
    "pcma/8000",
    "VP8/90000",
    "H264/90000",
    "VP9/90000",
    "G729/8000",
    "telephone-event/8000",
    "CN/8000",
    "rtx/90000",
    "red/90000",
    "red/48000/2",
    "ulpfec/90000",
    "t140/1000",
]
PROTOS = ["RTP/AVP", "RTP/AVP", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF", "RTP/AVPF", "udptl", "UDP/DTLS/SCTP"]
SUITES = [*CIPHERS, "F8_128_HMAC_SHA1_80", "aes_cm_128_hmac_sha1_80"]


@st.composite
def media_sections(draw: st.DrawFn) -> list[str]:
    kind = draw(st.sampled_from(["audio", "audio", "video", "video", "text", "application", "image"]))
    port = draw(st.sampled_from(["0", "9", "4000", "4000", "65535", "4000/2"]))
    proto = draw(st.sampled_from(PROTOS))
    lines: list[str] = []
    if "RTP" not in proto.upper().split("/"):
        formats = draw(st.lists(st.sampled_from(["t38", "webrtc-datachannel", "*", "x"]), min_size=1, max_size=3))
    else:
        pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=8, unique=True))
        formats = [str(pt) for pt in pts]
        for pt in pts:
            if draw(st.integers(0, 3)):  # most formats say what they are
                lines.append(f"a=rtpmap:{pt} {draw(st.sampled_from(ENCODINGS))}")
            choice = draw(st.sampled_from(["none", "apt", "red", "other"]))
            if choice == "apt":
                lines.append(f"a=fmtp:{pt} apt={draw(st.sampled_from(formats))}")
            elif choice == "red":
                lines.append(
                    f"a=fmtp:{pt} {'/'.join(draw(st.lists(st.sampled_from(formats), min_size=1, max_size=3)))}"
                )
            elif choice == "other":
                lines.append(f"a=fmtp:{pt} useinbandfec=1")
            if draw(st.booleans()):
                lines.append(f"a=rtcp-fb:{pt} nack")
        for index, suite in enumerate(draw(st.lists(st.sampled_from(SUITES), max_size=3)), 1):
            lines.append(f"a=crypto:{index} {suite} inline:a2V5")
        if draw(st.booleans()):
            lines.append("a=rtcp-fb:* ccm fir")
    if draw(st.booleans()):
        lines.append(FINGERPRINT)
    if draw(st.booleans()):
        lines.append("a=bundle-only")
    lines += draw(st.lists(st.sampled_from(["a=sendrecv", "c=IN IP4 192.0.2.9", "b=AS:64", "a=rtcp-mux"]), max_size=3))
    order = draw(st.permutations(lines))
    return [f"m={kind} {port} {proto} {' '.join(formats)}", *order]


@st.composite
def sdp_texts(draw: st.DrawFn) -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"]
    if draw(st.booleans()):
        lines.append(FINGERPRINT)
    for section in draw(st.lists(media_sections(), min_size=1, max_size=4)):
        lines += section
    return "".join(line + "\r\n" for line in lines)


policies = st.builds(
    MediaPolicy,
    st.one_of(st.just(CODECS), st.lists(st.sampled_from(CODECS), min_size=1, unique=True).map(tuple)),
    st.one_of(st.just(CIPHERS), st.lists(st.sampled_from(CIPHERS), unique=True).map(tuple)),
    st.sampled_from(["optional", "optional", "required"]),
)


def is_rtp(media: Media) -> bool:
    return "RTP" in media.proto.upper().split("/")


def encoding(media: Media, pt: str) -> str | None:
    for line in media.lines:
        if line.lower().startswith(f"a=rtpmap:{pt} ") and line.startswith("a="):
            name = line.split(" ", 1)[1].split("/")[0].strip().upper()
            return name or STATIC.get(int(pt))
    return STATIC.get(int(pt))


def check_filtered(original: SessionDescription, sender: MediaPolicy, receiver: MediaPolicy) -> None:
    result = filter_sdp(original, sender, receiver)
    if isinstance(result, Refusal):
        assert result.status == 488
        assert result.reason and result.reason.isascii() and not set(result.reason) & set('"\\\r\n')
        return
    assert result.session == original.session
    assert [(m.kind, m.proto) for m in result.media] == [(m.kind, m.proto) for m in original.media]
    assert parse_sdp(serialize_sdp(result)) == result
    assert filter_sdp(result, sender, receiver) == result  # filtering what was filtered changes nothing
    codecs = set(sender.codecs) & set(receiver.codecs)
    ciphers = set(sender.ciphers) & set(receiver.ciphers)
    assert any(is_active(m) and m.kind.lower() in ("audio", "video") and is_rtp(m) for m in result.media)
    for before, after in zip(original.media, result.media, strict=True):
        if not is_active(before) or not is_rtp(before):
            assert after == before
        elif not is_active(after):  # rejected here: still a valid m= line
            assert (after.port, after.formats) == (0, before.formats[:1])
        else:
            assert set(after.formats) <= set(before.formats)
            names = {pt: encoding(after, pt) for pt in after.formats}
            assert any(name in codecs for name in names.values())
            assert all(name in codecs | ALWAYS | REPAIR for name in names.values())
            dropped = set(before.formats) - set(after.formats)
            for line in after.lines:
                if line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
                    assert line.split(":", 1)[1].split(" ")[0] not in dropped
                if line.startswith("a=crypto:"):
                    assert line.split()[1].upper() in ciphers
        if is_active(before) and is_rtp(before):
            assert all(line.split()[1].upper() in ciphers for line in after.lines if line.startswith("a=crypto:"))
    if "required" in (sender.encryption, receiver.encryption):
        for media in result.media:
            if is_active(media) and is_rtp(media):
                assert is_secure(media, result.session)


@FUZZ
@given(sdp_texts())
def test_any_generated_sdp_round_trips_whatever_its_line_ends(text):
    data = text.encode()
    parsed = parse_sdp(data)
    assert serialize_sdp(parsed) == data
    assert parse_sdp(data.replace(b"\r\n", b"\n").removesuffix(b"\n")) == parsed


@FUZZ
@given(sdp_texts(), policies, policies)
def test_filter_keeps_m_lines_and_only_allowed_codecs_or_refuses(text, sender, receiver):
    check_filtered(parse_sdp(text.encode()), sender, receiver)


@FUZZ
@given(st.sampled_from(PHONES), policies, policies)
def test_filter_on_real_phone_offers_keeps_m_lines_and_only_allowed_codecs_or_refuses(data, sender, receiver):
    check_filtered(parse_sdp(data), sender, receiver)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_sdp_error(data):
    with contextlib.suppress(SdpError):
        parse_sdp(data)


SDP_ALPHABET = st.sampled_from([*b"\r\n \t=:/*-.0123456789vosctmabAVPRTSUDLpcmurxf", 0x00, 0x7F, 0xFF, 0xC3, 0x85])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(PHONES)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if op == "flip" and position < len(data):
            data[position] = draw(SDP_ALPHABET)
        elif op == "insert":
            data[position:position] = bytes(draw(st.lists(SDP_ALPHABET, max_size=8)))
        elif op == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[position:]
        elif op == "duplicate":
            data[position:position] = data[position : position + draw(st.integers(1, 64))]
    return bytes(data)


@FUZZ
@given(mutated(), policies, policies)
def test_mutated_phone_sdp_only_raises_sdp_error_and_filters_whatever_parses(data, sender, receiver):
    try:
        parsed = parse_sdp(data)
    except SdpError:
        return
    assert parse_sdp(serialize_sdp(parsed)) == parsed
    check_filtered(parsed, sender, receiver)
