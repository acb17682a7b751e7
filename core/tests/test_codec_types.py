"""Codec-neutral helpers of streamerp2p.types: error reasons, in-stream titles, rejoin."""

from __future__ import annotations

from streamerp2p.types import CodecSpec, FramerStats, framer_title


def test_count_error_keeps_reasons() -> None:
    stats = FramerStats()
    stats.count_error("bad page")
    stats.count_error("bad page", 2)
    stats.count_error("other")
    assert stats.errors == 4
    assert stats.reasons == {"bad page": 3, "other": 1}


def test_framer_title() -> None:
    class Titled:
        def __init__(self, title: object) -> None:
            self._title = title

        def title(self) -> object:
            return self._title

    class Broken:
        def title(self) -> str:
            raise ValueError

    assert framer_title(Titled("Artist - Song")) == "Artist - Song"
    assert framer_title(Titled("")) is None
    assert framer_title(Titled(None)) is None
    assert framer_title(Titled(42)) is None
    assert framer_title(Broken()) is None
    assert framer_title(object()) is None  # framers without titles (mp3)


def test_rejoin_defaults_to_none() -> None:
    spec = CodecSpec("x", (), (), lambda head, ct: 0.0, lambda: None)  # type: ignore[arg-type,return-value]
    assert spec.rejoin is None
