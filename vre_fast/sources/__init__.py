"""Frame sources: something that yields (frame index, HxWx3 uint8 RGB) pairs."""

from .video import VideoSource

__all__ = ["VideoSource"]
