"""Fuzzing ``streamerp2p://`` link parsing in CI (links come from web pages through
``streamer open``; long campaigns: ``streamer bench fuzz --target link``)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamerp2p import benchfuzz
from streamerp2p.link import Link, parse_hostport
from streamerp2p.testing import fuzz_settings

FUZZ = fuzz_settings()
SEEDS = benchfuzz.link_target().seeds
hosts = st.one_of(
    st.ip_addresses().map(str), st.from_regex(r"\A[a-z][a-z0-9.-]{0,30}\Z", fullmatch=True)
)


@settings(FUZZ, max_examples=100)
@given(
    st.binary(min_size=16, max_size=16),
    st.text(max_size=40),
    st.lists(st.tuples(hosts, st.integers(0, 65535)), max_size=4),
)
def test_links_round_trip(sid: bytes, name: str, seeds: list[tuple[str, int]]) -> None:
    link = Link(sid, name, tuple(seeds))
    assert Link.parse(str(link)) == link
    assert benchfuzz.check_link(str(link).encode()).startswith("ok")


@settings(FUZZ, max_examples=100)
@given(st.sampled_from(SEEDS), st.randoms(use_true_random=False))
def test_mutated_links_raise_only_value_error(seed: bytes, rng: random.Random) -> None:
    for _ in range(10):
        benchfuzz.check_link(benchfuzz.mutate(rng, seed, tokens=(b"&seed=", b"[", b"]", b":")))


@pytest.mark.parametrize("seed", ["192.0.2.11:db8::1]:9000", "]2001:db8::1]:9000", "a:b:c"])
def test_a_seed_that_is_neither_host_port_nor_ipv6_is_refused(seed: str) -> None:
    """Regression (bench fuzz): such seeds were taken for bare IPv6 addresses, kept as hosts
    and printed as links that did not parse back."""
    with pytest.raises(ValueError, match="not a host:port or an IPv6 address"):
        parse_hostport(seed)
    assert parse_hostport("2001:db8::1") == ("2001:db8::1", 8466)
    assert parse_hostport("[2001:db8::1]:9000") == ("2001:db8::1", 9000)


def test_bracketed_host_needs_its_bracket_and_loses_its_spaces() -> None:
    """Regression (bench fuzz): "[ host" was taken as the host " host", which printed as a link
    whose seed parsed as "host"."""
    assert parse_hostport("[ ::1 ]:5") == ("::1", 5)
    with pytest.raises(ValueError, match="no ]"):
        parse_hostport("[ snmf3h5u?name=x")


@pytest.mark.parametrize("seed", ["[[x]", "[x]]", "a]b:1", "[a[b]:5"])
def test_a_host_with_brackets_in_it_is_refused(seed: str) -> None:
    """Regression (bench fuzz, atheris): "[[x]" gave the host "[x", printed as the seed
    "[x:8466" that did not parse."""
    with pytest.raises(ValueError):
        parse_hostport(seed)


@pytest.mark.parametrize("seed", ["a b:80", "exa\tmple.org", "x\x00y:1", "host\u2028name"])
def test_a_host_with_spaces_or_control_characters_in_it_is_refused(seed: str) -> None:
    """(A leftover from the fuzzing of session 6: "a b:80" was taken as the host "a b".)"""
    with pytest.raises(ValueError, match="bad host"):
        parse_hostport(seed)
    assert parse_hostport(" example.org :80") == ("example.org", 80)
