"""Host output -> (stored, decoded): resized to the output size, encoded to the storage dtype (the config's
`output_dtype` if set), and decoded back only when a dependant or a picture needs it (widening float16 back
to float32 costs about as much as a simple kernel)."""

from __future__ import annotations

import numpy as np

from ...representation import Representation
from ..contracts import Operator
from ..resize import resize_batch

__all__ = ["EncodeOperator"]


class EncodeOperator(Operator[np.ndarray, tuple[np.ndarray, np.ndarray | None]]):
    name = "encode"

    def __init__(self, representation: Representation, output_size: tuple[int, int], decode: bool):
        super().__init__()
        self.representation, self.output_size, self.decode = representation, output_size, decode

    def run(self, item: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        rep = self.representation
        stored = rep.encode(resize_batch(item, self.output_size, rep.interpolation))
        if rep.output_dtype is not None and stored.dtype != rep.output_dtype:
            if np.issubdtype(stored.dtype, np.floating) != np.issubdtype(rep.output_dtype, np.floating):
                raise ValueError(f"output_dtype {rep.output_dtype.name} cannot hold '{rep.name}''s "
                                 f"{stored.dtype.name} outputs (a float and an integer dtype); choose one of the "
                                 f"same kind")
            stored = stored.astype(rep.output_dtype)
        return stored, rep.decode(stored) if self.decode else None

    def exact_on_device(self, raw_dtype: np.dtype, raw_size: tuple[int, int]) -> bool:
        """Whether a raw output of this dtype and size is already what dependants would get back from the
        store (no resize, the storage dtype, encode and decode the contract's identities): then a device
        output can feed a dependant on its device as it is, bit for bit."""
        rep = self.representation
        storage = rep.output_dtype if rep.output_dtype is not None else np.dtype(rep.storage_dtype)
        return (raw_size == self.output_size and np.dtype(raw_dtype) == storage and storage != np.float16
                and type(rep).encode is Representation.encode and type(rep).decode is Representation.decode)
