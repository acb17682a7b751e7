"""NAT traversal logic of the sans-I/O node, fed datagrams by hand (the real thing runs on
kernel NAT in tests/test_nat.py; these pin the rules that test bed cannot force)."""

from __future__ import annotations

from streamerp2p.overlay import wire
from streamerp2p.overlay.hosts import HostRec
from streamerp2p.overlay.node import Node

PUB = ("198.18.0.101", 8466)  # a router's public address
ME_LAN = ("10.1.0.2", 8466)


def _open_node(observed: tuple[str, int]) -> Node:
    n = Node(node_id=b"P" * wire.ID_LEN)
    n.observed = observed
    n.nat.checked = True
    n.nat.reach = wire.REACH_OPEN
    return n


def _sent(n: Node) -> list[tuple[wire.Message, tuple[str, int]]]:
    return [(wire.decode(d), a) for d, a in n.datagrams_to_send()]


def test_lan_client_of_a_forwarded_node_gets_what_arrives_for_its_public_address() -> None:
    proxy = _open_node(PUB)  # its router forwards 8466 to it
    client_lan = ("10.1.0.3", 8466)
    client_pub = ("198.18.0.101", 37851)  # the port the router gave the second host
    cid = b"C" * wire.ID_LEN
    proxy.receive_datagram(wire.ProxyReq(cid, client_pub).encode(), client_lan, 1.0)
    # first the address proves it receives what the proxy sends (no amplification): the
    # request waits for the RESPONSE, then is answered
    ((challenge, to),) = _sent(proxy)
    assert isinstance(challenge, wire.Challenge) and to == client_lan
    proxy.receive_datagram(wire.Response(challenge.token).encode(), client_lan, 1.01)
    assert _sent(proxy) == [(wire.ProxyOk(1), client_lan)]
    inner = wire.HelloReq(7, b"O" * wire.ID_LEN, b"\0" * 4, 0, 0, 0, None, None).encode()
    caller = ("198.18.0.10", 8466)
    proxy.receive_datagram(wire.Via(client_pub, inner).encode(), caller, 2.0)
    assert _sent(proxy) == [(wire.Fwd(caller, inner), client_lan)]
    # another public port of the same client (the router rewrites per destination): known by
    # the node id gossip gave that address
    other = ("198.18.0.101", 40001)
    proxy.hosts.add(other, HostRec(cid, b"\0" * 4, 2.0))
    proxy.receive_datagram(wire.Via(other, inner).encode(), caller, 2.5)
    assert _sent(proxy) == [(wire.Fwd(caller, inner), client_lan)]
    # a claimed public address behind some other router is no alias: not our client
    proxy.validate(("10.1.0.4", 8466), 3.0)
    proxy.receive_datagram(
        wire.ProxyReq(b"D" * wire.ID_LEN, ("203.0.113.9", 8466)).encode(), ("10.1.0.4", 8466), 3
    )
    _sent(proxy)
    proxy.receive_datagram(wire.Via(("203.0.113.9", 8466), inner).encode(), caller, 3.5)
    assert _sent(proxy) == []
    assert proxy.stats.nat_refused == 1


def test_second_node_on_a_lan_takes_its_forwarded_neighbour_as_proxy() -> None:
    n = Node(node_id=b"S" * wire.ID_LEN)
    n.observed = ("198.18.0.101", 37851)
    n.nat.reach = wire.REACH_SYMMETRIC  # its port is rewritten toward some destinations
    n.nat.checked = True
    fwd_pub, fwd_lan = ("198.18.0.101", 8466), ("10.1.0.2", 8466)
    rec = HostRec(b"F" * wire.ID_LEN, b"\0" * 4, 0.0)
    rec.reach, rec.lan = wire.REACH_OPEN, fwd_lan
    n.hosts.add(fwd_pub, rec)
    n.nat.consider_lan(fwd_pub, rec, 0.0)
    n.handle_timer(0.5)
    asks = [(m, a) for m, a in _sent(n) if isinstance(m, wire.ProxyReq)]
    assert asks == [(wire.ProxyReq(n.node_id, n.observed), fwd_lan)]
    n.receive_datagram(wire.ProxyOk(1).encode(), fwd_lan, 0.6)
    assert n.nat.proxy == fwd_lan
    assert n.nat.advertised_proxy == fwd_pub  # what others must send to
    assert n.nat.status()["proxy"] == "198.18.0.101:8466"


def test_a_failed_punch_is_remembered_and_the_pair_avoided() -> None:
    n = Node(node_id=b"A" * wire.ID_LEN)
    n.observed = ("198.18.0.102", 8466)
    natted = ("198.18.0.103", 8466)
    rec = HostRec(b"B" * wire.ID_LEN, b"\0" * 4, 0.0)
    rec.proxy = ("198.18.0.10", 8466)
    n.hosts.add(natted, rec)
    assert n.nat.can_reach(natted)
    n._now = 1.0
    n._send(wire.Punch(n.node_id).encode(), natted)  # any datagram: VIA and a punch go out
    kinds = {type(m) for m, _ in _sent(n)}
    assert kinds == {wire.Via, wire.Punch}
    n.handle_timer(3.0)
    assert n.nat.can_reach(natted)  # still waiting for its answer
    n.handle_timer(7.0)
    assert not n.nat.can_reach(natted) and n.stats.nat_punch_failed == 1
    n._now = 70.0
    assert n.nat.can_reach(natted)  # tried again after a while...
    n._send(wire.Punch(n.node_id).encode(), natted)
    n.handle_timer(71.0)
    n.handle_timer(77.0)
    n._now = 140.0
    assert not n.nat.can_reach(natted)  # ...and avoided twice as long after a second failure
    assert n.stats.nat_punch_failed == 2
    # an answer straight from a host clears its pending punch
    other = ("198.18.0.104", 8466)
    n.hosts.add(other, rec)
    n._send(wire.Punch(n.node_id).encode(), other)
    n.receive_datagram(wire.Punch(b"B" * wire.ID_LEN).encode(), other, 141.0)
    n.handle_timer(150.0)
    assert n.nat.can_reach(other)


def test_reachability_probe_comes_from_a_second_port() -> None:
    helper = _open_node(("198.18.0.10", 8466))
    asker = ("198.18.0.101", 8466)
    helper.receive_datagram(wire.ReachReq(42).encode(), asker, 1.0)
    assert helper.datagrams_to_send() == []  # nobody else to ask: it probes itself...
    assert helper.side_datagrams_to_send() == [(wire.ReachProbe(42).encode(), asker)]
    # ...and the asker, which wrote to the helper's port but never to the second one, is open
    n = Node(node_id=b"F" * wire.ID_LEN)
    n.observed = asker
    n.nat.local_addr = lambda _ip: ME_LAN  # a NAT in between: it must be probed
    n._now = 1.0
    n._send(wire.ReachReq(1).encode(), ("198.18.0.10", 8466))
    n.nat._nonce, n.nat._reach_deadline = 42, 2.5
    n.receive_datagram(wire.ReachProbe(42).encode(), ("198.18.0.10", 8466), 1.1)
    assert not n.nat.open  # from the port it wrote to: proves nothing
    n.receive_datagram(wire.ReachProbe(42).encode(), ("198.18.0.10", 51000), 1.2)
    assert n.nat.open and n.nat.checked
