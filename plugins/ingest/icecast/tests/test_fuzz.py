"""Fuzzing the Icecast source server in CI (long campaigns: ``streamer bench fuzz``).

The connection handler runs on an in-memory byte stream (the ``icecast`` bench target): mutated
requests of real tools and garbage, in any read sizes; nothing escapes the handler (its
``errors`` counter stays 0) and nothing hangs.
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
    return benchfuzz.icecast_target()


def _one(target: benchfuzz.Target, request: str) -> str:
    return target.check(b"\xc0" + request.replace("{auth}", benchfuzz._AUTH).encode("latin-1"))


def test_seeds_are_what_real_tools_send(target: benchfuzz.Target) -> None:
    outcomes = {target.check(seed) for seed in target.seeds}
    assert any("sources" in o for o in outcomes)
    assert any("title_updates" in o for o in outcomes)
    assert any("auth_failures" in o for o in outcomes)


@settings(FUZZ, max_examples=80)
@given(st.randoms(use_true_random=False), st.data())
def test_mutated_requests_never_escape_the_handler(
    target: benchfuzz.Target, rng: random.Random, data: st.DataObject
) -> None:
    target.check_mutants(rng, data.draw(st.sampled_from(target.seeds)))


@settings(FUZZ, max_examples=80)
@given(st.binary(max_size=600))
def test_garbage_is_a_bad_request(target: benchfuzz.Target, data: bytes) -> None:
    outcome = target.check(b"\x03" + data)
    assert "errors" not in outcome.split(":")[0]


@pytest.mark.parametrize("charset", ["idna", "undefined", "utf%00-8", "no-such-charset"])
def test_title_update_with_a_charset_that_cannot_decode(
    target: benchfuzz.Target, charset: str
) -> None:
    """Regression (bench fuzz): ``charset`` values Python cannot decode with (a NUL in the
    name, idna and "undefined", which refuse errors="replace") raised out of the handler
    instead of falling back to UTF-8/latin-1."""
    outcome = _one(
        target,
        f"GET /admin/metadata?mode=updinfo&mount=/live&song=Caf%C3%A9&charset={charset} "
        "HTTP/1.0\r\nAuthorization: {auth}\r\n\r\n",
    )
    assert "title_updates" in outcome
    assert target.check.__self__.titles[-1] == ("/live", "Café")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "request_line",
    [
        "PUT http://a]b/live HTTP/1.1",
        "SOURCE http://[x/live ICE/1.0",
        "GET http://[::1/admin.cgi HTTP/1.0",
    ],
)
def test_absolute_target_with_a_broken_ipv6_host_is_a_bad_request(
    target: benchfuzz.Target, request_line: str
) -> None:
    """Regression (bench fuzz): urlsplit's ValueError ("Invalid IPv6 URL") escaped the
    handler: the tool got no answer and the node logged a traceback."""
    outcome = _one(target, request_line + "\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
    assert outcome.startswith("bad_requests:") and "400" in outcome
