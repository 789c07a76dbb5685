"""The representation contract: what a node computes, how it is stored, read back and drawn.

The runtime owns batching, resizing, storage and scheduling; a subclass overrides only
`compute` (and, where the defaults do not fit, `encode` / `decode` / `make_image` / `setup`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from .kernels import colormaps

__all__ = ["SAMPLE_FRAMES", "ComputeBatch", "Input", "NoParams", "Representation", "kernel_backend", "sample_batch"]


def kernel_backend(device: str) -> str:
    """The kernels' backend for a device name, for `setup`'s warm-ups: CUDA kernels on "cuda[:n]", numba on
    the CPU (compute needs none: the kernels run where their input arrays are)."""
    return "cuda" if device.startswith("cuda") else "numba"


@dataclass(frozen=True)
class NoParams:
    """Parameters of a representation that takes none."""


@dataclass(frozen=True)
class Input:
    """A dependency slot; YAML `dependencies` fill these in order, or by role when given as a mapping."""

    role: str
    optional: bool = False


class ComputeBatch:
    """A batch as `compute` sees it, already where the node computes: NumPy arrays on the CPU, device arrays
    on a CUDA device (the runtime placed them there; a representation never copies between devices).

    `frames` / `next_frames` may be handed over as a zero-argument callable: it is called on first access
    only, so a node that reads only its inputs costs no frame copy to its device."""

    def __init__(self, indices: list[int], frames: Any, next_frames: Any = None,
                 inputs: dict[str, Any] | None = None):
        self.indices = list(indices)
        self._frames, self._next_frames = frames, next_frames
        self.inputs: dict[str, Any] = inputs or {}  # role -> decoded dependency output at the output size

    @property
    def frames(self) -> Any:
        """(B, H, W, 3) uint8 video frames."""
        if callable(self._frames):
            self._frames = self._frames()
        return self._frames

    @property
    def next_frames(self) -> Any:
        """If the representation `needs_next_frame`: frames t + its `next_frame_delta` (1 unless it says
        otherwise), clipped to the video (the last frame repeats at the end, the first at the start); else None."""
        if callable(self._next_frames):
            self._next_frames = self._next_frames()
        return self._next_frames


SAMPLE_FRAMES = 8  # how many of a video's first frames `prepare` sees


def sample_batch(frames: np.ndarray) -> ComputeBatch:
    """The batch `prepare` gets from up to SAMPLE_FRAMES + 1 consecutive frames, each with its t+1."""
    count = max(1, len(frames) - 1)
    return ComputeBatch(list(range(count)), frames[:count], frames[-count:], {})


class Representation(ABC):
    """One node of the graph. Do not override the constructor; declare `Params` and `inputs` instead.

    The graph builder constructs a node once its dependencies are built. The constructor sets `params`,
    `dependencies` and the output dtype, then calls `validate()` (checks only) and `bind()` (state derived from
    params and dependencies, such as class ids resolved through a dependency's class names); either rejects the
    node by raising ValueError, which the builder reports as a ConfigError naming the node.
    """

    Params: ClassVar[type] = NoParams
    inputs: ClassVar[tuple[Input, ...]] = ()
    needs_next_frame: ClassVar[bool] = False  # compute also gets frame t+1 (batch.next_frames)
    # resizing to the output size; "auto": nearest for integer outputs, linear for floats
    interpolation: ClassVar[Literal["auto", "linear", "nearest"]] = "auto"
    storage_dtype: ClassVar[Any] = np.float16
    # where compute can run: "cpu" (NumPy in, NumPy out) and, for nodes built on the kernels' CUDA backend,
    # "cuda" (device arrays in, device arrays out). A node on a device its compute does not support gets
    # NumPy arrays (learned experts: their backend moves the arrays itself).
    compute_backends: ClassVar[tuple[str, ...]] = ("cpu",)
    # what the output is to a viewer that shows it natively rather than as make_image's picture (the Rerun
    # recordings of vre_fast/rerun_view.py): "depth" (a depth map, metric or relative), "flow" (optical flow);
    # None: a picture. Class maps need no kind: `classes` says they are one.
    output_kind: ClassVar[Literal["depth", "flow"] | None] = None
    # parameters added after datasets were recorded, with their defaults: one at its default is left out of the
    # definition, so the outputs stored before it existed still match
    later_parameters: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str, params: Any, dependencies: dict[str, Representation],
                 output_dtype: str | None = None, *, type_name: str):
        self.name = name
        # the registered name the config used (`type:`), recorded in `definition`; a class registered under
        # several names (aliases) is recorded under the one its node was configured with
        self.type_name = type_name
        self.params = params
        self.dependencies = dependencies
        # the config's `output_dtype` (VRE's): the stored dtype, within the same kind (float or integer)
        self.output_dtype = None if output_dtype is None else np.dtype(output_dtype)
        native = self.native_storage_dtype()
        if self.output_dtype is not None and (np.issubdtype(native, np.floating)
                                              != np.issubdtype(self.output_dtype, np.floating)):
            raise ValueError(f"output_dtype: {self.output_dtype.name} cannot hold this representation's "
                             f"{native.name} outputs; choose a dtype of the same kind (float or integer)")
        self.storage_dtype = native if self.output_dtype is None else self.output_dtype
        self.validate()
        self.bind()

    # -- hooks a subclass may override -------------------------------------------------------------
    def validate(self) -> None:
        """Called once by the constructor, params and dependencies set: checks only, nothing assigned; raise
        ValueError to reject the node (a dependency that cannot feed it, an unknown variant, ...)."""

    def bind(self) -> None:
        """Called once by the constructor after `validate`: derives the attributes `compute` needs from params
        and dependencies (the constructor's extension point); may raise ValueError to reject the node."""

    def native_storage_dtype(self) -> np.dtype:
        """The stored dtype when the config sets no `output_dtype`: `storage_dtype`, unless the stored form
        depends on the parameters (a segmenter storing class probabilities instead of class ids)."""
        return np.dtype(type(self).storage_dtype)

    @property
    def classes(self) -> tuple[str, ...] | None:
        """Class names when the output is a class map; dependants resolve class names through this."""
        return None

    @property
    def class_probabilities(self) -> bool:
        """True when the output holds one probability per class, (..., len(classes)) floats, instead of
        class ids; dependants that need ids take the argmax (`_classes.class_ids`)."""
        return False

    def setup(self, device: str) -> None:
        """Called by the runtime only when this node has frames to compute (learned ones load weights)."""

    def prepare(self, sample: ComputeBatch) -> None:
        """Called by the runtime after `setup` with a `sample_batch` of the input: a video's first frames (the
        same whichever frames a run computes, so a resumed run prepares the same way), a stream's first
        frame. Work that depends on the input (an expert's engine shape profile, an INT8 model's
        calibration) happens here, so it is not counted as compute time. `inputs` are empty."""

    def teardown(self) -> None:
        """Called by the runtime after the last batch; frees what `setup` took."""

    @abstractmethod
    def compute(self, batch: ComputeBatch) -> Any:
        """(B, h, w[, C]) output for `batch`, on the device of its arrays; any h, w: the runtime resizes to the
        output size (on the host, after copying it there for storage)."""

    def encode(self, output: np.ndarray) -> np.ndarray:
        """The compact array stored in npz/<frame>.npz."""
        return output.astype(self.storage_dtype, copy=False)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        """What dependants receive; also applied to freshly computed outputs, so a dependant sees the same
        values whether its input was computed in this run or read back from disk. float16 storage is
        widened to float32 (kernels do not compute in float16)."""
        return stored.astype(np.float32) if stored.dtype == np.float16 else stored

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 picture of a batch of decoded outputs."""
        return colormaps.auto_to_image(decoded)

    def make_image_of_stored(self, stored: np.ndarray) -> np.ndarray:
        """The same picture from the stored arrays, `make_image(decode(stored))`: what the writers draw when
        nothing else needed the batch decoded. A representation that can draw its stored form directly
        (HSV: float16 without widening it) overrides this, equal to that byte for byte."""
        return self.make_image(self.decode(stored))

    # -- used by the runtime -----------------------------------------------------------------------
    @property
    def next_frame_delta(self) -> int:
        """With `needs_next_frame`: `next_frames` holds frames t + this, clipped to the video (VRE's `delta`)."""
        return 1

    def definition(self) -> dict[str, Any]:
        """Everything that determines the stored values; a change means the stored frames are stale."""
        later = self.later_parameters
        parameters = {k: v for k, v in asdict(self.params).items() if k not in later or v != later[k]}
        definition = {"type": self.type_name, "parameters": parameters,
                      "inputs": {role: dep.definition() for role, dep in self.dependencies.items()}}
        if self.output_dtype is not None:  # only when set: definitions recorded before it existed stay equal
            definition["output_dtype"] = self.output_dtype.name
        return definition

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
