"""Fuzzing the SHOUTcast v1 source server in CI (long campaigns: ``streamer bench fuzz``).

Both ports' handlers run on an in-memory byte stream (the ``shoutcast`` bench target): mutated
password lines, ICY headers and admin.cgi requests of real tools and garbage, in any read sizes;
nothing escapes the handlers (their ``errors`` counter stays 0) and nothing hangs.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamerp2p import benchfuzz
from streamerp2p.testing import fuzz_settings

FUZZ = fuzz_settings()


@pytest.fixture(scope="module")
def target() -> benchfuzz.Target:
    return benchfuzz.shoutcast_target()


def test_seeds_are_what_real_tools_send(target: benchfuzz.Target) -> None:
    outcomes = {target.check(seed) for seed in target.seeds}
    assert any("sources" in o for o in outcomes)
    assert any("title_updates" in o for o in outcomes)
    assert any("auth_failures" in o for o in outcomes)
    assert any("probes" in o for o in outcomes)  # !POKE


@settings(FUZZ, max_examples=80)
@given(st.randoms(use_true_random=False), st.data())
def test_mutated_logins_never_escape_the_handlers(
    target: benchfuzz.Target, rng: random.Random, data: st.DataObject
) -> None:
    target.check_mutants(rng, data.draw(st.sampled_from(target.seeds)))


@settings(FUZZ, max_examples=80)
@given(st.binary(max_size=600), st.booleans())
def test_garbage_on_either_port(target: benchfuzz.Target, data: bytes, base: bool) -> None:
    target.check(b"\x03" + data + (b"\x80" if base else b"\x00"))


@pytest.mark.parametrize("charset", ["idna", "undefined", "la%00n1", "no-such-charset"])
def test_title_update_with_a_charset_that_cannot_decode(
    target: benchfuzz.Target, charset: str
) -> None:
    """Regression (bench fuzz): ``charset`` values Python cannot decode with (a NUL in the
    name, idna and "undefined", which refuse errors="replace") raised out of the handler
    instead of falling back to UTF-8/latin-1."""
    request = (
        f"GET /admin.cgi?pass=hackme&mode=updinfo&song=Caf%C3%A9&charset={charset} HTTP/1.0"
        "\r\n\r\n\x80"
    )
    outcome = target.check(b"\xc0" + request.encode("latin-1"))
    assert "title_updates" in outcome
    assert target.check.__self__.titles[-1] == ("/", "Café")  # type: ignore[attr-defined]


def test_admin_target_with_a_broken_ipv6_host_is_a_bad_request(target: benchfuzz.Target) -> None:
    """Regression (bench fuzz): urlsplit's ValueError ("Invalid IPv6 URL") escaped the
    base port's handler: the tool got no answer and the node logged a traceback."""
    request = "GET http://[x/admin.cgi?pass=hackme&mode=updinfo&song=x HTTP/1.0\r\n\r\n\x80"
    outcome = target.check(b"\xc0" + request.encode())
    assert outcome.startswith("bad_requests:") and "400" in outcome
