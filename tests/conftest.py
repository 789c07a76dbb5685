"""Shared fixtures: small videos made with PyAV on the fly (nothing is downloaded)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from vre_fast.sources.synthetic import drifting_texture, write_video


def make_video(path: Path, num_frames: int = 24, height: int = 48, width: int = 64, fps: int = 10,
               gop: int = 8) -> Path:
    """A drifting texture with the frame index drawn as 8 bars on top (so frames are told apart)."""
    frames = list(drifting_texture(num_frames, height, width))
    for i, frame in enumerate(frames):
        for bit in range(8):
            frame[: height // 8, bit * width // 8: (bit + 1) * width // 8] = 255 * ((i >> bit) & 1)
    return write_video(path, frames, fps=fps, gop=gop)


def frames_of(video: Path) -> list:
    """Every frame of `video` decoded by PyAV as HxWx3 uint8 RGB (the reference the engine's frames are held to)."""
    with av.open(str(video)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def remux(src: Path, dst: Path) -> Path:
    """The same compressed frames in another container (what `ffmpeg -c copy` does): the pixels are identical."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is not None:  # the demuxer's end-of-stream flush packet
                packet.stream = copy
                out.mux(packet)
    return dst


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "video.mp4")


@pytest.fixture(scope="session")
def decoded_reference(tmp_path_factory: pytest.TempPathFactory):
    """(video path, every frame from a plain sequential decode) of a longer video with sparse keyframes."""
    path = make_video(tmp_path_factory.mktemp("seq") / "long.mp4", num_frames=90, gop=25)
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return path, frames


@pytest.fixture
def engine_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's export cache (VRE_FAST_CACHE), shared by the test files: each expert exports once."""
    cache = tmp_path_factory.getbasetemp() / "vre-fast-cache"
    monkeypatch.setenv("VRE_FAST_CACHE", str(cache))
    return cache


def rep_of(type_name: str, **params):  # noqa: ANN201 - a Representation
    """The representation of one node of `type_name` with `params`, built as a run builds it."""
    from vre_fast import parse_config
    from vre_fast._builder import build_graph

    graph = build_graph(parse_config({"representations": {"x": {"type": type_name, "parameters": params}}}))
    return graph["x"].representation


@pytest.fixture
def registry():
    """Each test's plugin types are taken out again afterwards (as if each test were its own process); yields
    the function that does it, for a test that needs a fresh registry half-way."""
    from vre_fast import _registry, plugins

    _registry.list_representations()  # the built-ins are in
    before, loaded = dict(_registry.registered_types()), dict(plugins._loaded)

    def forget() -> None:
        types = _registry.registered_types()
        types.clear()
        types.update(before)
        plugins._loaded.clear()
        plugins._loaded.update(loaded)

    yield forget
    forget()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Polls `condition` every 10 ms; a test fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.01)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
