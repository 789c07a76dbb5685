"""A video file decoded by torchcodec (`decoder: torchcodec`): FFmpeg on the CPU, or NVDEC on a CUDA device.

The header (frame rate, frame count, size) and therefore the video's identity come from PyAV exactly as for
VideoSource, so a dataset made with one decoder is resumed with the other; only the pixels come from
torchcodec, in its exact seek mode (frame `i` is the `i`-th frame in presentation order, which is PyAV's
pts-derived index for the constant-frame-rate videos VideoSource assumes). On `cuda` the frames are decoded
by NVDEC into device memory: `read_tensors` hands them over there (no copy through the host); `read` copies
them back, since a FramesSource yields NumPy frames.

torchcodec loads FFmpeg's shared libraries (4 to 9) at import and PyPI's build needs a CUDA build of torch
(>= 2.11); where either is missing, opening one raises VideoError saying which (`torchcodec_unavailable`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VideoError
from .fingerprint import pixel_fingerprint
from .video import VideoSource

__all__ = ["TorchCodecSource", "torchcodec_unavailable"]

CHUNK = 16  # frames asked of torchcodec at once: its batched, sorted decode seeks only where it must


def _decoder_class() -> Any:
    """torchcodec's VideoDecoder, or VideoError naming why it cannot be loaded."""
    try:
        from torchcodec.decoders import VideoDecoder
    except ModuleNotFoundError:
        raise VideoError("decoder torchcodec: the torchcodec package is not installed (pip install "
                         "'vre-fast[torchcodec]'; it needs a CUDA build of torch >= 2.11 and FFmpeg 4-9's shared "
                         "libraries)") from None
    except (ImportError, OSError, RuntimeError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        cause = f"; caused by: {exc.__cause__}" if exc.__cause__ else ""
        raise VideoError(f"decoder torchcodec: torchcodec is installed but cannot load its libraries "
                         f"(FFmpeg 4-9's libavcodec etc., and for PyPI's build a CUDA build of torch): "
                         f"{first}{cause}") from None
    return VideoDecoder


def torchcodec_unavailable() -> str | None:
    """Why torchcodec cannot decode here (one line), or None when it can."""
    try:
        _decoder_class()
    except VideoError as exc:
        return str(exc)
    return None


class TorchCodecSource(VideoSource):
    """VideoSource's header and identity, torchcodec's decode; `device` "cpu" or "cuda[:N]" (NVDEC)."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        decoder_class = _decoder_class()
        super().__init__(path)
        self.device = device
        self.cuda_backend: str | None = None  # on CUDA: torchcodec's "beta" interface (NVCUVID) or "ffmpeg"'s
        try:
            self._tc = self._open(decoder_class, device)
        except Exception as exc:  # torchcodec raises RuntimeError / ValueError from FFmpeg or the CUDA interface
            self.close()
            raise VideoError(f"{self.path}: torchcodec cannot open it on {device}: {exc}") from None
        self._tc_frames = int(self._tc.metadata.num_frames or 0)  # exact mode scanned every packet

    def _open(self, decoder_class: Any, device: str) -> Any:
        """On CUDA, torchcodec's "beta" interface first: it drives NVDEC through the driver's NVCUVID and needs no
        FFmpeg built with NVDEC (PyAV's is not); FFmpeg's own CUDA decoding where that interface is missing."""
        options = {"device": device, "seek_mode": "exact", "dimension_order": "NHWC", "num_ffmpeg_threads": 0}
        if device.startswith("cuda"):
            from torchcodec import decoders

            if hasattr(decoders, "set_cuda_backend"):
                try:
                    with decoders.set_cuda_backend("beta"):
                        decoder = decoder_class(str(self.path), **options)
                    self.cuda_backend = "beta"
                    return decoder
                except RuntimeError:
                    pass
            self.cuda_backend = "ffmpeg"
        return decoder_class(str(self.path), **options)

    def fingerprint(self) -> str:
        """PyAV's decode, as VideoSource's: the video's identity must not depend on the decoder (torchcodec's
        colour conversion may differ by a level), so a dataset made with one decoder is resumed with the other."""
        return pixel_fingerprint(super().read, self.num_frames, self.height, self.width)

    def reopen(self) -> TorchCodecSource:
        return TorchCodecSource(self.path, self.device)

    def read_tensors(self, indices: Iterable[int]) -> Iterator[tuple[list[int], Any]]:
        """(indices, N x H x W x 3 uint8 torch tensor on `device`) for the sorted `indices`, CHUNK at a time."""
        wanted = sorted(set(indices))
        for i in wanted:
            if not 0 <= i < self.num_frames:
                raise VideoError(f"{self.path}: frame {i} is out of range (video has {self.num_frames} frames)")
            if i >= self._tc_frames:
                raise VideoError(f"{self.path}: the video ends after frame {self._tc_frames - 1} but frame {i} "
                                 f"was asked for (header says {self.num_frames} frames; truncated or corrupt file?)")
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            try:
                batch = self._tc.get_frames_at(indices=chunk)
            except Exception as exc:
                raise VideoError(f"{self.path}: torchcodec failed decoding frames {chunk[0]}..{chunk[-1]}: "
                                 f"{exc}") from None
            yield chunk, batch.data

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (index, HxWx3 uint8 RGB) in ascending order, as VideoSource does."""
        for chunk, data in self.read_tensors(indices):
            host = data.cpu().numpy()
            yield from zip(chunk, host)
