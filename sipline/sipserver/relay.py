"""The relay between nodes: a device reached through the node that holds its flow.

A device is reachable only through the flow it registered on (its TCP or TLS connection, or the
UDP socket it sent to), which one node holds. A call placed on another node sends its requests
to that node with a Route naming the flow (RFC 5626's flow token, signed with the installation's
key); the holder forwards them statelessly (RFC 3261 §16.11) over the flow, and Record-Routes
itself twice (RFC 5658: one face toward the device, one toward the nodes), so the dialog's later
requests, from either side, pass through it too. Responses go back by Via, as for any proxy.

It forwards only to flows named by a valid token or to live nodes: never an open relay.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from sipline.sip.errors import SipParseError
from sipline.sip.headers import Headers, parse_name_addr, parse_uri, parse_via
from sipline.sip.message import SipRequest, SipResponse, make_response, serialize
from sipline.sip.transaction import top_via
from sipline.store.bindings import Origin

from .flows import Flow, FlowTable, StreamFlow, UdpFlow
from .local import Local
from .nodes import Nodes

log = logging.getLogger("sipline.sip.relay")

RELAY = "sl-relay"  # URI and Via parameter: a hop of a relay
FLOW = "sl-flow"  # its value: a signed flow token


class Relay:
    def __init__(self, local: Local, flows: FlowTable, nodes: Nodes, key: bytes) -> None:
        self.local = local
        self.flows = flows
        self.nodes = nodes
        self._key = key
        self.udp: UdpFlow | None = None  # our UDP socket (its remote address is replaced per use)

    # --- tokens --------------------------------------------------------------------------------

    def _mac(self, node_id: str, description: str) -> str:
        return hmac.new(self._key, f"{node_id}|{description}".encode(), hashlib.sha256).hexdigest()[:16]

    def _own_token(self, description: str) -> str:
        """A token for a flow of ours: a stream is held by this worker, UDP by the whole node."""
        holder = self.local.worker_id if description.startswith("s~") else self.local.node_id
        return f"{description}~{self._mac(holder, description)}"

    def token(self, node_id: str, origin: Origin) -> str:
        """The token of a device's flow on node `node_id`: `u~host~port~mac` or `s~flowid~mac`."""
        if origin.transport == "udp":
            description = f"u~{origin.source_host}~{origin.source_port}"
        else:
            description = f"s~{origin.flow_id}"
        return f"{description}~{self._mac(node_id, description)}"

    def _flow_of(self, token: str) -> Flow | None:
        description = token.rpartition("~")[0]
        if not hmac.compare_digest(token, self._own_token(description)):
            return None
        kind, _, rest = description.partition("~")
        if kind == "s":
            return self.flows.get(rest)
        if kind == "u" and self.udp is not None:
            host, _, port = rest.rpartition("~")
            if port.isdigit():
                return UdpFlow(self.udp.socket, (host, int(port)))
        return None

    def route(self, node_id: str, origin: Origin) -> str | None:
        """The Route toward a device held by another (live) node; None when that node is gone."""
        node = self.nodes.get(node_id)
        if node is None:
            return None
        host = f"[{node.host}]" if ":" in node.host else node.host
        return f"<sip:{host}:{node.udp_port};lr;{RELAY};{FLOW}={self.token(node_id, origin)}>"

    def node_flow(self, node_id: str) -> Flow | None:
        node = self.nodes.get(node_id)
        if node is None or self.udp is None:
            return None
        return UdpFlow(self.udp.socket, (node.host, node.udp_port))

    # --- requests ------------------------------------------------------------------------------

    def claims(self, request: SipRequest) -> bool:
        """A request whose next hop is this node as a relay (its top Route is one of ours)."""
        top = request.headers.get("Route")
        return top is not None and RELAY in top and self._is_ours(top)

    def _is_ours(self, route: str) -> bool:
        try:
            uri = parse_uri(parse_name_addr(route).uri)
        except SipParseError:
            return False
        return RELAY in uri.params and self.local.is_me(uri.host, uri.port)

    def forward(self, request: SipRequest, incoming: Flow) -> None:
        """Forward statelessly: pop our Routes, pick the next hop (a flow of ours, or a node)."""
        routes = request.headers.get_all("Route")
        tokens: list[str] = []
        while routes and RELAY in routes[0] and self._is_ours(routes[0]):
            uri = parse_uri(parse_name_addr(routes.pop(0)).uri)
            token = uri.params.get(FLOW)
            if token:
                tokens.append(token)
        target = self._target(tokens, routes, request, incoming)
        log.debug("SIP relay: %s from %r via %s -> %r", request.method, incoming, tokens, target)
        if target is None:
            if request.method != "ACK":
                response = make_response(request, 430, "Flow Failed")
                incoming.for_response(top_via(request)).send(serialize(response))
            log.debug("SIP relay: no way on for a %s from %r", request.method, incoming)
            return
        forwarded = self._rewrite(request, routes, incoming, target)
        if forwarded is None:
            return
        target.send(serialize(forwarded))

    def _target(self, tokens: list[str], routes: list[str], request: SipRequest, incoming: Flow) -> Flow | None:
        for token in tokens:
            flow = self._flow_of(token)
            if flow is not None and not _same_flow(flow, incoming):
                return flow  # toward a device
        # Toward a node: the next Route, else the Request-URI (our Contact on the calling node).
        try:
            uri = parse_uri(parse_name_addr(routes[0]).uri if routes else request.uri)
        except SipParseError:
            return None
        node = self.nodes.at(uri.host.strip("[]"), uri.port or 5060)
        if node is None or self.udp is None:
            return None
        return UdpFlow(self.udp.socket, (node.host, node.udp_port))

    def _rewrite(self, request: SipRequest, routes: list[str], incoming: Flow, target: Flow) -> SipRequest | None:
        max_forwards = int(request.headers.get("Max-Forwards") or "70")
        if max_forwards <= 0:
            if request.method != "ACK":
                incoming.for_response(top_via(request)).send(serialize(make_response(request, 483)))
            return None
        headers = Headers()
        # Our Via, its branch derived from the incoming one so that an INVITE, its CANCEL and the
        # ACK of its failure get the same (§16.11); a stream flow back is remembered in it.
        back = f";{FLOW}={incoming.id}" if isinstance(incoming, StreamFlow) else ""
        digest = hashlib.sha256((request.headers.get("Via") or "").encode()).hexdigest()[:24]
        branch = f"z9hG4bK-{self.local.instance}-r{digest}"
        headers.add("Via", f"{self.local.via(target.transport, branch)};{RELAY}{back}")
        if request.method == "INVITE" and "tag=" not in (request.headers.get("To") or ""):
            # A dialog begins: stay on its path, one face toward the device, one toward the nodes.
            device_face = self.local.uri(target.transport, f";lr;{RELAY}")
            if isinstance(target, StreamFlow):
                device_face += f";{FLOW}={self._own_token(f's~{target.id}')}"
            elif isinstance(target, UdpFlow):
                device_face += f";{FLOW}={self._own_token(f'u~{target.remote[0]}~{target.remote[1]}')}"
            headers.add("Record-Route", f"<{device_face}>")
            headers.add("Record-Route", f"<{self.local.relay_uri(f';lr;{RELAY}')}>")
        for name, value in request.headers.items():
            if name == "Route":
                continue
            if name == "Max-Forwards":
                value = str(max_forwards - 1)
            headers.add_parsed(name, value)
        for route in routes:
            headers.add("Route", route)
        return SipRequest(request.method, request.uri, headers, request.body)

    def pass_on(self, request: SipRequest, incoming: Flow, worker: tuple[str, int]) -> None:
        """Pass a request that came over a connection of ours to another worker of this node (at
        its relay address), which holds its dialog: statelessly, our Via on it, so that the
        response comes back through here and over the connection it came on."""
        if self.udp is None:
            return
        target = UdpFlow(self.udp.socket, worker)
        forwarded = self._rewrite(request, request.headers.get_all("Route"), incoming, target)
        if forwarded is not None:
            target.send(serialize(forwarded))

    # --- responses -----------------------------------------------------------------------------

    def response(self, response: SipResponse) -> bool:
        """A response to a request we relayed: our Via off, on to the next one. False when the
        top Via is not a relay Via of ours."""
        vias = response.headers.get_all("Via")
        if not vias or RELAY not in vias[0]:
            return False
        try:
            ours = parse_via(vias[0])
            previous = parse_via(vias[1]) if len(vias) > 1 else None
        except SipParseError:
            return False
        if previous is None or not (ours.branch or "").startswith(f"z9hG4bK-{self.local.instance}-r"):
            return False
        back: Flow | None = None
        flow_id = ours.params.get(FLOW)
        if flow_id:
            back = self.flows.get(flow_id)
        elif self.udp is not None:
            # Where the previous hop's request came from, as we stamped it on receipt (RFC 3581).
            host = previous.received or previous.host.strip("[]")
            port = int(previous.rport) if previous.rport else previous.port or 5060
            back = UdpFlow(self.udp.socket, (host, port))
        if back is None:
            return True  # the way back is gone: the peer's transaction times out
        headers = Headers()
        skipped = False
        for name, value in response.headers.items():
            if name == "Via" and not skipped:
                skipped = True
                rest = value.split(",", 1)
                if len(rest) == 1:
                    continue
                value = rest[1].strip()
            headers.add_parsed(name, value)
        back.send(serialize(SipResponse(response.status, response.reason, headers, response.body)))
        return True


def _same_flow(a: Flow, b: Flow) -> bool:
    if isinstance(a, StreamFlow) and isinstance(b, StreamFlow):
        return a.id == b.id
    return a.transport == b.transport == "udp" and a.remote == b.remote
