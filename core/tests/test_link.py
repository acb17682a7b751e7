from __future__ import annotations

import pytest
from streamerp2p.link import Link, parse_hostport
from streamerp2p.overlay.records import StationKey, encode_station_id


def test_link_roundtrip() -> None:
    sid = StationKey.generate().station_id
    link = Link(sid, "Radio & Co / 1", (("127.0.0.1", 8466), ("::1", 9000)))
    text = str(link)
    assert text.startswith("streamerp2p://" + encode_station_id(sid))
    assert Link.parse(text) == link


def test_bare_station_id_and_errors() -> None:
    sid = StationKey.generate().station_id
    assert Link.parse(encode_station_id(sid)).station_id == sid
    with pytest.raises(ValueError):
        Link.parse("http://example.invalid/x")
    with pytest.raises(ValueError):
        Link.parse("streamerp2p://tooshort")


def test_hostport() -> None:
    assert parse_hostport("a.b:1") == ("a.b", 1)
    assert parse_hostport("a.b") == ("a.b", 8466)
    assert parse_hostport("[::1]:5") == ("::1", 5)
    with pytest.raises(ValueError):
        parse_hostport("x:70000")
