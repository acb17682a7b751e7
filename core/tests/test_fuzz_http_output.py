"""Fuzzing the local player output in CI (long campaigns: ``streamer bench fuzz``).

What players send (request heads, paths, ``Icy-MetaData``, ``Host``...) goes to the handler on
an in-memory stream: every request gets an HTTP answer, nothing is counted as an unexpected
error. ICY metadata blocks parse back to the title; the interleaved stream minus its metadata
is the audio.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamerp2p import benchfuzz
from streamerp2p.http_output import ICY_MAX_PAYLOAD, icy_metadata_block
from streamerp2p.testing import fuzz_settings

FUZZ = fuzz_settings()


@pytest.fixture(scope="module")
def target() -> benchfuzz.Target:
    return benchfuzz.http_output_target()


def test_seeds_reach_streams_playlists_and_the_index(target: benchfuzz.Target) -> None:
    outcomes = {target.check(seed) for seed in target.seeds}
    assert "HTTP/1.0 200True" in outcomes  # a stream with ICY metadata
    assert "HTTP/1.0 200False" in outcomes
    assert any(o.startswith(("HTTP/1.0 400", "HTTP/1.0 405")) for o in outcomes)


@settings(FUZZ, max_examples=80)
@given(st.randoms(use_true_random=False), st.data())
def test_mutated_requests_always_get_an_answer(
    target: benchfuzz.Target, rng: random.Random, data: st.DataObject
) -> None:
    target.check_mutants(rng, data.draw(st.sampled_from(target.seeds)))


@settings(FUZZ, max_examples=80)
@given(st.binary(max_size=600))
def test_garbage_gets_400(target: benchfuzz.Target, data: bytes) -> None:
    outcome = target.check(b"\x02\x00" + data)  # (a NUL first: never a request line)
    assert outcome.startswith("HTTP/1.0 400"), outcome


@settings(FUZZ, max_examples=300)
@given(st.text(max_size=5000), st.text(max_size=700))
def test_icy_blocks_parse_back(title: str, url: str) -> None:
    block = icy_metadata_block(title, url)
    assert len(block) == 1 + 16 * block[0] <= 1 + ICY_MAX_PAYLOAD
    text = "\n".join([title.replace("\n", " "), url.replace("\n", " "), "audio"])
    benchfuzz.check_icy(text.encode())


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=3000))
def test_icy_interleaver_and_builder_on_any_bytes(data: bytes) -> None:
    benchfuzz.check_icy(data)


@pytest.mark.parametrize("path", ["http://utf-17x]stream/y", "http://[x/stream/y", "//[::1/"])
def test_absolute_target_with_a_broken_ipv6_host_is_a_bad_request(
    target: benchfuzz.Target, path: str
) -> None:
    """Regression (bench fuzz): urlsplit's ValueError ("Invalid IPv6 URL") escaped the
    handler (counted as an unexpected error, logged, no answer to the player)."""
    outcome = target.check(b"\xc0GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert outcome.startswith("HTTP/1.0 400"), outcome
