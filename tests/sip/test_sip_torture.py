"""RFC 4475 torture messages, written out here as bytes (CRLF line ends unless stated otherwise).

Valid messages (§3.1.1) must parse. Invalid ones (§3.1.2, §3.3) must raise SipParseError, or, where
RFC 4475 lets an element tolerate them, parse into something the registrar or helpers refuse.
"""

import pytest

from sipline.sip import (
    RegisterError,
    RegisterPolicy,
    RegisterSuccess,
    SipParseError,
    SipRequest,
    SipResponse,
    aor_user,
    make_response,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    process_register,
)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def sdp(host: str) -> bytes:
    return crlf(
        f"v=0\no=mhandley 29739 7272939 IN IP4 {host}\ns=-\nc=IN IP4 {host}\nt=0 0\n"
        "m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
    )


def request(data: bytes) -> SipRequest:
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


# --- §3.1.1 valid messages ----------------------------------------------------------------

WSINV = crlf(
    r"""INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

"""
) + sdp("192.0.2.3").replace(b"c=IN IP4 192.0.2.3", b"c=IN IP4 192.0.2.4")


def test_wsinv_short_tortuous_invite_parses():
    msg = request(WSINV)
    h = msg.headers
    assert msg.method == "INVITE"
    assert len(msg.body) == 150
    assert parse_name_addr(h.get("To") or "").params == {"tag": "1918181833n"}
    sender = parse_name_addr(h.get("From") or "")
    assert sender.display == 'J Rosenberg \\"'
    assert sender.params == {"tag": "98asjd8"}
    assert h.get("CSeq") == "0009 INVITE"
    assert h.get("Max-Forwards") == "0068"
    assert h.get("Subject") == ""
    assert h.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert h.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    vias = [parse_via(v) for v in h.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    contact = parse_name_addr(h.get("Contact") or "")
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert parse_uri(msg.uri).params == {"unknownparam": None}


INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:"
    b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>\r\n'
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\""
    + "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439".encode()
    + b"\";tag=_token~1'+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:" + "\ufeff\u5927\u505c\u96fb".encode() + b"\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_intmeth_wide_range_of_valid_characters_parses():
    msg = request(INTMETH)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = parse_uri(msg.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert parse_name_addr(msg.headers.get("To") or "").display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    sender = parse_name_addr(msg.headers.get("From") or "")
    assert sender.display == "token1~` token2'+_ token3*%!.-"
    assert sender.params["tag"] == "_token~1'+`*%!-."
    assert msg.headers.get("Call-ID") == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"


ESC01 = crlf(
    """INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150

"""
) + sdp("192.0.2.1")


def test_esc01_percent_escapes_are_decoded_once():
    msg = request(ESC01)
    assert parse_uri(msg.uri).user == "sips:user@example.com"
    assert parse_uri(parse_name_addr(msg.headers.get("To") or "").uri).user == "user"
    assert parse_uri(parse_name_addr(msg.headers.get("From") or "").uri).user == "I have spaces"
    contact = parse_uri(parse_name_addr(msg.headers.get("Contact") or "").uri)
    assert contact.user == "caller"
    # Not recursive: %25%34%31 is "%41", which must not become "A".
    assert contact.params == {"lr": None, "name": "value%41"}


ESCNULL = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

"""
)


def test_escnull_escaped_nulls_parse_and_register_as_two_contacts():
    msg = request(ESCNULL)
    assert aor_user(msg) == ("null-\x00-null", "example.com")
    result = process_register(msg, [], 1000.0, RegisterPolicy())
    assert isinstance(result, RegisterSuccess)
    assert [b.contact for b in result.bindings] == ["sip:%00@host5.example.com", "sip:%00%00@host5.example.com"]


ESC02 = crlf(
    """RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0

"""
)


def test_esc02_percent_is_not_an_escape_outside_uris():
    msg = request(ESC02)
    assert msg.method == "RE%47IST%45R"  # an unknown method, not REGISTER
    assert parse_name_addr(msg.headers.get("To") or "").display == "%Z%45"
    assert len(msg.headers.get_all("Contact")) == 2
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


LWSDISP = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

"""
)


def test_lwsdisp_no_space_between_display_name_and_uri_parses():
    msg = request(LWSDISP)
    assert parse_name_addr(msg.headers.get("From") or "").display == "caller"


def _longreq() -> bytes:
    long_ = "long" * 20
    lines = [
        "INVITE sip:user@example.com SIP/2.0",
        f'To: "I have a user name of {"extreme" * 10} proportion"<sip:user@example.com:6000;'
        f"unknownparam1=very{long_}value;longparam{'name' * 25}=shortvalue;very{long_}ParameterNameWithNoValue>",
        f"F: sip:{'amazinglylongcallername' * 5}@example.net;tag={'1298' * 40}424;"
        f"unknownheaderparam{'name' * 20}=unknowheaderparam{'value' * 15};unknownValueless{'paramname' * 10}",
        f"Call-ID: longreq.one{'really' * 20}longcallid",
        "CSeq: 3882340 INVITE",
        f"Unknown-{'Long' * 20}-Name: unknown-{long_}-value; unknown-{long_}-parameter-name = "
        f"unknown-{long_}-parameter-value",
        *[f"Via: SIP/2.0/TCP sip{n}.example.com" for n in range(33, 0, -1)],
        f"Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{long_ * 3}branchvalue",
        "Max-Forwards: 70",
        f"Contact: <sip:{'amazinglylongcallername' * 5}@host5.example.net>",
        "Content-Type: application/sdp",
        "l: 150",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + sdp("192.0.2.1")


def test_longreq_long_values_parse():
    msg = request(_longreq())
    assert len(msg.headers.get_all("Via")) == 34
    assert (msg.headers.get("Call-ID") or "").startswith("longreq.one")
    assert len(msg.body) == 150


DBLREQ = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0

INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150

"""
) + sdp("192.0.2.15")


def test_dblreq_bytes_after_content_length_are_ignored_in_a_datagram():
    msg = request(DBLREQ)
    assert msg.method == "REGISTER"
    assert msg.body == b""


SEMIURI = crlf(
    """OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

"""
)


def test_semiuri_semicolon_in_user_part_is_not_a_parameter():
    msg = request(SEMIURI)
    uri = parse_uri(msg.uri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u@example.net", "example.com", {})
    assert len(msg.headers.get_all("Accept")) == 6


TRANSPORTS = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

"""
)


def test_transports_unknown_via_transport_parses():
    msg = request(TRANSPORTS)
    assert [parse_via(v).transport for v in msg.headers.get_all("Via")] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


MPART01_HEAD = crlf(
    """MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZng=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)

"""
)
MPART01_BODY = (
    b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"Hello\r\n--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n\x30\x82\x01\x52\x06\x09\x2a\x86\x48\x86\xf7\xff\xfe\x00"
    b"\r\n--7a9cbec02ceef655--\r\n"
)


def test_mpart01_binary_multipart_body_is_kept_as_bytes():
    # Modelled on mpart01 (its real body is a CMS signature): a body that is not UTF-8 is fine.
    data = MPART01_HEAD.replace(b"User-Agent", f"Content-Length: {len(MPART01_BODY)}\r\nUser-Agent".encode())
    msg = request(data + MPART01_BODY)
    assert msg.body == MPART01_BODY


UNREASON = crlf(
    "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e"
    "\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435\n"
    """Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>

"""
) + sdp("192.0.2.198")


def test_unreason_utf8_reason_phrase_parses():
    msg = parse_message(UNREASON)
    assert isinstance(msg, SipResponse)
    assert msg.status == 200
    assert msg.reason.endswith("\u043f\u0440\u043e\u0441\u0442\u043e\u0435")
    assert len(msg.body) == 154


NOREASON = crlf(
    """SIP/2.0 100 
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"""  # noqa: W291  (the trailing space after 100 is the point of this test)
)


def test_noreason_empty_reason_phrase_parses():
    msg = parse_message(NOREASON)
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason) == (100, "")


ZEROMF = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=3ghsd41
Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas
CSeq: 39234321 OPTIONS
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i
Max-Forwards: 0
Content-Length: 0

"""
)


def test_zeromf_max_forwards_zero_parses():
    assert request(ZEROMF).headers.get("Max-Forwards") == "0"


# --- §3.1.2 invalid messages --------------------------------------------------------------

BADINV01 = crlf(
    """INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 152
Content-Type: application/sdp

"""
) + sdp("192.0.2.15")

CLERR = crlf(
    """INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999

"""
) + sdp("192.0.2.155")

NCL = crlf(
    """INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999

"""
) + sdp("192.0.2.53")

SCALAR02 = crlf(
    f"""REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1{"0" * 103}
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0

"""
)

SCALARLG = crlf(
    """SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0

"""
)

QUOTBAL = crlf(
    """INVITE sip:user@example.com SIP/2.0
To: "Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: 152

"""
) + sdp("192.0.2.15")

LTGTRURI = crlf(
    """INVITE <sip:user@example.com> SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: ltgtruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 150

"""
) + sdp("192.0.2.5")

LWSRURI = crlf(
    """INVITE sip:user@example.com; lr SIP/2.0
To: sip:user@example.com;tag=3xfe-9921883-z9f
From: sip:caller@example.net;tag=231413434
Max-Forwards: 5
Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423
CSeq: 2130706432 INVITE
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 150

"""
) + sdp("192.0.2.1")

LWSSTART = crlf(
    """INVITE  sip:user@example.com  SIP/2.0
Max-Forwards: 8
To: sip:user@example.com
From: sip:caller@example.net;tag=8814
Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com
CSeq: 1893884 INVITE
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 150

"""
) + sdp("192.0.2.1")

TRWS = crlf(
    "OPTIONS sip:remote-target@example.com SIP/2.0  \n"
    """Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093
To: <sip:remote-target@example.com>
From: <sip:local-resource@example.com>;tag=329429089
Call-ID: trws.oicu34958239neffasdhr2345r
Accept: application/sdp
CSeq: 238923 OPTIONS
Max-Forwards: 70
Content-Length: 0

"""
)

ESCRURI = crlf(
    """INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 149209342 INVITE
Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw
l: 0

"""
)

BADASPEC = crlf(
    """OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0

"""
)

BADDN = crlf(
    """OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0

"""
)

BADVERS = crlf(
    """OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0

"""
)

MISMATCH01 = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0

"""
)

MISMATCH02 = crlf(
    """NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
l: 0

"""
)

BIGCODE = crlf(
    """SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"""
)

INSUF = crlf(
    """INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: 152

"""
) + sdp("192.0.2.95")

MULTI01 = crlf(
    """INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: 154
Contact: <sip:caller@host36.example.net>
Max-Forwards: 5

"""
) + sdp("192.0.2.25")

MCL01 = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain

There's no way to know how many octets are supposed to be here.
"""
)

REJECTED = {
    "badinv01": BADINV01,
    "clerr": CLERR,
    "ncl": NCL,
    "scalar02": SCALAR02,
    "scalarlg": SCALARLG,
    "quotbal": QUOTBAL,
    "ltgtruri": LTGTRURI,
    "lwsruri": LWSRURI,
    "lwsstart": LWSSTART,
    "trws": TRWS,
    "escruri": ESCRURI,
    "badaspec": BADASPEC,
    "baddn": BADDN,
    "badvers": BADVERS,
    "mismatch01": MISMATCH01,
    "mismatch02": MISMATCH02,
    "bigcode": BIGCODE,
    "insuf": INSUF,
    "multi01": MULTI01,
    "mcl01": MCL01,
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_invalid_torture_message_is_rejected(name):
    with pytest.raises(SipParseError):
        parse_message(REJECTED[name])


# Requests whose Via, From, To, Call-ID and CSeq survive get a partial request so a 400 can be sent.
ANSWERABLE = [
    "clerr",
    "ncl",
    "scalar02",
    "quotbal",
    "ltgtruri",
    "lwsruri",
    "lwsstart",
    "trws",
    "escruri",
    "badaspec",
    "baddn",
    "badvers",
    "mismatch01",
    "mismatch02",
    "multi01",
    "mcl01",
]


@pytest.mark.parametrize("name", ANSWERABLE)
def test_invalid_request_with_recoverable_headers_can_be_answered_with_400(name):
    with pytest.raises(SipParseError) as caught:
        parse_message(REJECTED[name])
    partial = caught.value.partial
    assert partial is not None
    response = make_response(partial, 400)
    for header in ("Via", "From", "To", "Call-ID", "CSeq"):
        assert header in response.headers


@pytest.mark.parametrize("name", ["badinv01", "insuf", "scalarlg", "bigcode"])
def test_unanswerable_invalid_message_has_no_partial(name):
    # badinv01's only Via is itself garbage, insuf lacks From/To/Call-ID, the others are responses.
    with pytest.raises(SipParseError) as caught:
        parse_message(REJECTED[name])
    assert caught.value.partial is None


def test_badvers_reason_names_the_version():
    with pytest.raises(SipParseError, match="version"):
        parse_message(BADVERS)


# --- tolerated by the parser, refused later -----------------------------------------------

BADDATE = crlf(
    """INVITE sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=2234923
Max-Forwards: 70
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234
CSeq: 1392934 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 150

"""
) + sdp("192.0.2.5")


def test_baddate_is_tolerated_because_nothing_here_uses_date():
    # RFC 4475 §3.1.2.12 lets an element that does not care about Date ignore a bad one.
    assert request(BADDATE).headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


REGBADCT = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0

"""
)


def test_regbadct_unbracketed_contact_with_headers_is_refused_by_registrar():
    result = process_register(request(REGBADCT), [], 1000.0, RegisterPolicy())
    assert isinstance(result, RegisterError)
    assert result.status == 400


UNKSM2 = crlf(
    """REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0

"""
)


def test_unksm2_register_with_non_sip_aor_parses_but_has_no_aor():
    msg = request(UNKSM2)
    with pytest.raises(SipParseError):
        aor_user(msg)
    result = process_register(msg, [], 1000.0, RegisterPolicy())
    assert isinstance(result, RegisterError) and result.status == 400


REGESCRT = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=8
Max-Forwards: 70
Call-ID: regescrt.k345asrl3fdbv@192.0.2.1
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>
L:0

"""
)


def test_regescrt_bracketed_contact_with_escaped_header_is_stored_as_is():
    result = process_register(request(REGESCRT), [], 1000.0, RegisterPolicy())
    assert isinstance(result, RegisterSuccess)
    assert result.bindings[0].contact == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


CPARAM01 = crlf(
    """REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe
To: sip:watson@example.com
Call-ID: cparam01.70710@saturn.example.com
CSeq: 2 REGISTER
Contact: sip:+19725552222@gw1.example.net;unknownparam
l: 0

"""
)


def test_cparam01_parameter_after_bare_contact_uri_is_a_header_parameter():
    result = process_register(request(CPARAM01), [], 1000.0, RegisterPolicy())
    assert isinstance(result, RegisterSuccess)
    assert result.bindings[0].contact == "sip:+19725552222@gw1.example.net"


def test_cparam02_parameter_inside_brackets_is_a_uri_parameter():
    data = CPARAM01.replace(
        b"Contact: sip:+19725552222@gw1.example.net;unknownparam",
        b"Contact: <sip:+19725552222@gw1.example.net;unknownparam>",
    )
    result = process_register(request(data), [], 1000.0, RegisterPolicy())
    assert isinstance(result, RegisterSuccess)
    assert result.bindings[0].contact == "sip:+19725552222@gw1.example.net;unknownparam"


BCAST = crlf(
    """SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host28.example.com>

"""
) + sdp("192.0.2.198")


def test_bcast_response_parses_and_exposes_the_broadcast_via():
    # Not the parser's business (RFC 4475 §3.3.10): whoever forwards responses must not use it.
    msg = parse_message(BCAST)
    assert isinstance(msg, SipResponse)
    assert parse_via(msg.headers.get_all("Via")[1]).host == "255.255.255.255"


UNKSCM = crlf(
    """OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0

"""
)


def test_unkscm_unknown_request_uri_scheme_parses_for_a_416():
    assert request(UNKSCM).uri == "nobodyKnowsThisScheme:totallyopaquecontent"


def test_escruri_partial_keeps_the_call_id_for_the_400():
    with pytest.raises(SipParseError) as caught:
        parse_message(ESCRURI)
    assert caught.value.partial is not None
    assert caught.value.partial.headers.get("Call-ID") == "escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5"
