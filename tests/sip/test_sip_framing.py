import pytest

from sipline.sip import PING, PONG, SipParseError, StreamFramer, parse_message

MESSAGE = (
    b"OPTIONS sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n"
    b"From: <sip:a@example.com>;tag=1\r\n"
    b"To: <sip:example.com>\r\n"
    b"Call-ID: c1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 5\r\n"
    b"\r\n"
    b"hello"
)


def test_complete_message_is_returned_whole():
    framer = StreamFramer()
    assert framer.feed(MESSAGE) == [MESSAGE]
    assert framer.buffered == 0


def test_message_split_across_reads_is_reassembled():
    framer = StreamFramer()
    items = [item for byte in MESSAGE for item in framer.feed(bytes([byte]))]
    assert items == [MESSAGE]


def test_two_messages_in_one_read_are_both_returned():
    assert StreamFramer().feed(MESSAGE + MESSAGE) == [MESSAGE, MESSAGE]


def test_body_is_framed_by_content_length():
    framer = StreamFramer()
    assert framer.feed(MESSAGE[:-2]) == []
    assert framer.buffered == len(MESSAGE) - 2
    assert framer.feed(MESSAGE[-2:] + b"OPT") == [MESSAGE]
    assert framer.buffered == 3


def test_compact_content_length_is_understood():
    message = MESSAGE.replace(b"Content-Length: 5", b"l:5")
    assert StreamFramer().feed(message + MESSAGE) == [message, MESSAGE]


def test_missing_content_length_means_empty_body_on_streams():
    message = MESSAGE.replace(b"Content-Length: 5\r\n", b"")[:-5]
    assert StreamFramer().feed(message + MESSAGE) == [message, MESSAGE]


def test_double_crlf_keepalive_is_reported_as_ping():
    framer = StreamFramer()
    assert framer.feed(PING + MESSAGE + PING) == [PING, MESSAGE, PING]
    assert PONG == b"\r\n"


def test_keepalive_split_across_reads_is_still_one_ping():
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n") == [PING]


def test_single_crlf_between_messages_is_skipped():
    assert StreamFramer().feed(MESSAGE + b"\r\n" + MESSAGE) == [MESSAGE, MESSAGE]


def test_framed_message_parses():
    (item,) = StreamFramer().feed(MESSAGE)
    assert parse_message(item).body == b"hello"  # type: ignore[union-attr]


def test_oversized_header_block_is_refused():
    framer = StreamFramer(max_size=1000)
    with pytest.raises(SipParseError):
        framer.feed(b"OPTIONS sip:x SIP/2.0\r\nX-Pad: " + b"a" * 1000)


def test_content_length_beyond_limit_is_refused():
    with pytest.raises(SipParseError):
        StreamFramer(max_size=1000).feed(MESSAGE.replace(b"Content-Length: 5", b"Content-Length: 5000"))


@pytest.mark.parametrize("value", [b"-1", b"five", b"99999999999", b""])
def test_invalid_content_length_is_refused(value):
    with pytest.raises(SipParseError):
        StreamFramer().feed(MESSAGE.replace(b"Content-Length: 5", b"Content-Length: " + value))


def test_conflicting_content_lengths_are_refused():
    with pytest.raises(SipParseError):
        StreamFramer().feed(MESSAGE.replace(b"Call-ID: c1", b"l: 7\r\nCall-ID: c1"))
