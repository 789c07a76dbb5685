"""`VREDataset`: a torch Dataset over a dataset directory (vre-fast's, VRE 1.18.6's) or its shards.

An item is `{"frame": index, name: tensor, ...}` for one frame: each stored array decoded by its own
representation's `decode` (rebuilt from the definition the dataset records), derived representations
computed from their stored inputs, then put in training form: class maps int64 class ids (or float32
one-hot; stored class probabilities stay float32 probabilities), floats float32, other integers (rgb, masks)
as decoded; then normalised where asked. Values keep the stored layout, (H, W) or (H, W, C).
"""

from __future__ import annotations

import multiprocessing
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .._cfg import stable_hash
from ..collage import representation_from_definition
from ..errors import ConfigError, StoreError
from ._stores import DatasetStore, open_store
from .derived import DerivedRepresentations
from .missing import ItemSpec, missing_policies
from .normalization import normalizations
from .prefetch import Prefetcher, RecycledArrays
from .statistics import ChannelStatistics, RunningStatistics, load_cached_statistics, save_cached_statistics

__all__ = ["VREDataset"]

FRAME_KEY, PRESENT_KEY = "frame", "present"  # item keys besides the representations

Item = dict[str, Any]


class VREDataset(Dataset):
    """Parameters:
    - path: a `vre-fast run` output directory, one made by VRE 1.18.6, or shards (`export.json`); or a store
    - representations: the names an item holds (stored or derived); default: every stored one, then the derived
    - derived: representations computed at read time, in the config's YAML shape: {name: {type, dependencies,
      parameters}}; their dependencies are stored (or derived before them)
    - frames: only these frame indices (default: every frame any chosen representation has)
    - missing: what a frame lacking a representation does: raise (default), drop, fill_zero, fill_nan, fill_none;
      one for all or {name: policy, "*": default}
    - normalization: min_max, standardization or None; one for all (class maps excepted) or {name: kind, "*": ...}
    - statistics: {name: ChannelStatistics or {min, max, mean, std}} to normalise with instead of computing them
    - one_hot: True, or the class maps to return one-hot (float32, (H, W, classes)) instead of int64 ids
    - classes: for a VRE-made dataset, which records no definitions: {name: class names or count} of its class maps
    """

    def __init__(self, path: Path | str | DatasetStore, representations: Sequence[str] | None = None, *,
                 derived: Mapping[str, Mapping[str, Any]] | None = None, frames: Iterable[int] | None = None,
                 missing: str | Mapping[str, str] = "raise",
                 normalization: str | Mapping[str, str | None] | None = None,
                 statistics: Mapping[str, ChannelStatistics | Mapping[str, Sequence[float]]] | None = None,
                 one_hot: bool | Sequence[str] = False, classes: Mapping[str, Sequence[str] | int] | None = None):
        self.store = path if isinstance(path, DatasetStore) else open_store(path, classes)
        stored = self.store.representations
        self._frames_source = next((n for n, r in stored.items() if r.definition.get("type") == "rgb"),
                                   "rgb" if "rgb" in stored else None)
        self.derived = DerivedRepresentations(derived or {}, stored, self._frames_source)
        self.names = list(representations) if representations is not None else [*stored, *self.derived.nodes]
        self._check_names()
        self._needs = {name: self._stored_needs(name) for name in self.names}
        self._decoders = {n: representation_from_definition(n, stored[n].definition)
                          for n in set().union(*self._needs.values())}
        self._classes = {n: self._representation(n).classes for n in self.names
                         if self._representation(n).classes is not None}
        self._one_hot = set(self._classes) if one_hot is True else set(one_hot or ())
        if self._one_hot - set(self._classes):
            raise ConfigError(f"one_hot: {sorted(self._one_hot - set(self._classes))} are not class maps; class maps "
                              f"here: {sorted(self._classes)}")
        self._policies = missing_policies(missing, self.names)
        self.frames = self._list_frames(frames)
        self._position = {frame: i for i, frame in enumerate(self.frames)}
        self._normalizations = normalizations(normalization, self.names, set(self._classes))
        self.specs = {name: self._learn_spec(name) for name in self.names}
        for name, policy in self._policies.items():
            policy.check(name, self.specs[name])
        self.statistics = self._statistics(statistics or {})

    # -- building -------------------------------------------------------------------------------------
    def _check_names(self) -> None:
        known = [*self.store.representations, *self.derived.nodes]
        unknown = [n for n in self.names if n not in known]
        if unknown:
            raise StoreError(f"{self.store.root}: no representation(s) {unknown}; stored: "
                             f"{sorted(self.store.representations)}, derived: {sorted(self.derived.nodes)}")
        reserved = {FRAME_KEY, PRESENT_KEY} & set(self.names)
        if reserved or not self.names or len(set(self.names)) != len(self.names):
            raise ConfigError(f"representations: {self.names} must be distinct, at least one, and none named "
                              f"'{FRAME_KEY}' or '{PRESENT_KEY}' (the item's own keys)")

    def _representation(self, name: str) -> Any:
        node = self.derived.nodes.get(name)
        return node.representation if node is not None else self._decoders[name]

    def _stored_needs(self, name: str) -> frozenset[str]:
        """The stored representations `name`'s value is read or computed from."""
        node = self.derived.nodes.get(name)
        if node is None:
            return frozenset({name})
        needs = {self._frames_source} if node.from_frames else set()
        return frozenset(needs.union(*(self._stored_needs(dep) for dep in node.inputs.values())))

    def _present(self, name: str, frame: int) -> bool:
        return all(frame in self.store.representations[s].readable for s in self._needs[name])

    def _list_frames(self, frames: Iterable[int] | None) -> list[int]:
        """The dataset's frames: the dropping policies first, then the others may refuse what is left."""
        readable = [self.store.representations[s].readable for needs in self._needs.values() for s in needs]
        universe = sorted(set(frames) if frames is not None else set().union(*readable))
        lacking = {n: [f for f in universe if not self._present(n, f)] for n in self.names}
        dropped = {f for n, p in self._policies.items() if p.drops_frames for f in lacking[n]}
        for name, policy in self._policies.items():
            policy.refuse(name, [f for f in lacking[name] if f not in dropped], str(self.store.root))
        kept = [f for f in universe if f not in dropped]
        if not kept:
            raise StoreError(f"{self.store.root}: no frame has every one of {self.names} (of {len(universe)} frames)")
        return kept

    def _learn_spec(self, name: str) -> ItemSpec:
        """Shape and dtype of `name`'s values, from the first frame that has it."""
        frame = next((f for f in self.frames if self._present(name, f)), None)
        if frame is None:
            raise StoreError(f"representation '{name}' has none of the dataset's {len(self.frames)} frames: nothing "
                             f"to learn its shape from; leave it out")
        value = self._training_form(name, self._decoded(name, frame, {}))
        dtype = np.dtype(np.float32) if name in self._normalizations else value.dtype
        return ItemSpec(value.shape, dtype)

    def _statistics(self, given: Mapping[str, Any]) -> dict[str, ChannelStatistics]:
        """Statistics of the normalised representations: given, cached for exactly these frames, or computed
        in one pass over the frames that have them (then cached)."""
        unknown = sorted(set(given) - set(self.names))
        if unknown:
            raise ConfigError(f"statistics: {unknown} not among the reader's representations {self.names}")
        result = {n: ChannelStatistics.coerce(v, n) for n, v in given.items()}
        wanted = [n for n in self._normalizations if n not in result]
        keys = {n: self._statistics_key(n) for n in wanted}
        for name in wanted:
            cached = load_cached_statistics(self.store.root, name, keys[name])
            if cached is not None:
                result[name] = cached
        todo = [n for n in wanted if n not in result]
        if todo:
            running = {n: RunningStatistics() for n in todo}
            for frame in self.frames:
                cache: dict[str, np.ndarray] = {}
                for name in todo:
                    if self._present(name, frame):
                        running[name].update(self._training_form(name, self._decoded(name, frame, cache)))
            for name in todo:
                result[name] = running[name].result(name)
                save_cached_statistics(self.store.root, name, keys[name], result[name])
        for name, stats in result.items():
            channels = self.specs[name].shape[-1] if len(self.specs[name].shape) == 3 else 1
            if stats.mean.shape != (channels,):
                raise StoreError(f"statistics['{name}']: {stats.mean.shape[0]} channel(s) given, '{name}' has "
                                 f"{channels}")
        return result

    def _statistics_key(self, name: str) -> str:
        """What the statistics depend on: the definition and, per frame covered, what wrote each stored input."""
        stamps = {s: self.store.representations[s].frames for s in self._needs[name]}
        covered = [[f, *(f"{stamps[s][f].run_id}@{stamps[s][f].stamp}" for s in sorted(stamps))]
                   for f in self.frames if self._present(name, f)]
        return stable_hash({"definition": self._representation(name).definition(), "frames": covered})

    # -- reading --------------------------------------------------------------------------------------
    def _decoded(self, name: str, frame: int, cache: dict[str, np.ndarray]) -> np.ndarray:
        """`name`'s decoded value at `frame`, as a dependant in `vre-fast run` would see it; `cache` holds the
        values already read for this frame."""
        if name in cache:
            return cache[name]
        node = self.derived.nodes.get(name)
        if node is None:
            value = self._decoders[name].decode(self.store.read(name, frame))
        else:
            inputs = {role: self._decoded(dep, frame, cache) for role, dep in node.inputs.items()}
            frames = self._decoded(self._frames_source, frame, cache) if node.from_frames else None
            value = self.derived.compute(name, frame, inputs, frames)
        cache[name] = value
        return value

    def _training_form(self, name: str, decoded: np.ndarray) -> np.ndarray:
        classes = self._classes.get(name)
        if classes is None or np.issubdtype(decoded.dtype, np.floating):  # class probabilities stay as they are
            return decoded.astype(np.float32, copy=False) if np.issubdtype(decoded.dtype, np.floating) else decoded
        ids = decoded[..., 0] if decoded.ndim == 3 and decoded.shape[-1] == 1 else decoded
        if name not in self._one_hot:
            return ids.astype(np.int64)
        table = np.eye(len(classes) + 1, len(classes), dtype=np.float32)  # ids past the classes (ignore): zeros
        return table[np.minimum(ids, len(classes))]

    def _values(self, position: int) -> dict[str, Any]:
        """The item at `position` as NumPy arrays (None where a fill_none representation lacks the frame)."""
        frame = self.frames[position]
        cache: dict[str, np.ndarray] = {}
        values: dict[str, Any] = {FRAME_KEY: frame}
        for name in self.names:
            if not self._present(name, frame):
                values[name] = self._policies[name].fill(self.specs[name])
                continue
            value = self._training_form(name, self._decoded(name, frame, cache))
            if name in self._normalizations:
                value = self._normalizations[name].apply(value, self.statistics[name])
            values[name] = value
        return values

    def _item(self, position: int) -> Item:
        values = self._values(position)
        return {k: v if k == FRAME_KEY or v is None else torch.from_numpy(np.ascontiguousarray(v))
                for k, v in values.items()}

    def _batch(self, rows: Sequence[dict[str, Any]], empty: Callable[..., np.ndarray] = np.empty) -> Item:
        """Stacks rows of arrays (or tensors) into one tensor per representation. The batch is filled in NumPy
        (an array per representation from `empty`, one copy of each row) and handed to torch without a copy: on
        this project's 2-core machine torch.stack takes about 15x as long for the same 50 MB batch."""
        batch: Item = {FRAME_KEY: torch.tensor([row[FRAME_KEY] for row in rows], dtype=torch.int64)}
        present = {}
        for name in self.names:
            spec = self.specs[name]
            stacked = empty((len(rows), *spec.shape), spec.dtype)
            for i, row in enumerate(rows):
                value = row[name]
                if value is None:
                    stacked[i] = 0
                else:
                    stacked[i] = value.numpy() if isinstance(value, torch.Tensor) else value
            if self._policies[name].may_be_none:
                present[name] = torch.tensor([row[name] is not None for row in rows])
            batch[name] = torch.from_numpy(stacked)
        if present:
            batch[PRESENT_KEY] = present
        return batch

    def collate_fn(self, items: Sequence[Item]) -> Item:
        """Stacks items into a batch: {"frame": (B,), name: (B, ...)}; representations under fill_none also get
        `batch["present"][name]`, a (B,) bool mask, their missing rows zeros. For a DataLoader's collate_fn."""
        return self._batch(items)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int | slice | Sequence[int]) -> Item:
        """An item by position; a slice or a list of positions gives a collated batch (`by_frames` takes frame
        indices instead)."""
        if isinstance(index, slice):
            return self._batch([self._values(i) for i in range(len(self))[index]])
        if isinstance(index, (list, tuple)) or (isinstance(index, (np.ndarray, torch.Tensor)) and index.ndim == 1):
            return self._batch([self._values(self._checked(int(i))) for i in index])
        return self._item(self._checked(operator.index(index)))

    def _checked(self, position: int) -> int:
        if not -len(self) <= position < len(self):
            raise IndexError(f"position {position} out of range for a dataset of {len(self)} frames")
        return position % len(self)

    def by_frames(self, frames: Sequence[int]) -> Item:
        """A collated batch of these frame indices (not positions)."""
        absent = [f for f in frames if f not in self._position]
        if absent:
            raise StoreError(f"frame(s) {absent} are not in this dataset of {len(self)} frames "
                             f"({self.frames[0]}..{self.frames[-1]})")
        return self[[self._position[f] for f in frames]]

    # -- iterating ------------------------------------------------------------------------------------
    def batches(self, batch_size: int, prefetch: int = 3, shuffle: bool = False, seed: int = 0,
                drop_last: bool = False, threads: int | None = None) -> Iterator[Item]:
        """Batches in order (or shuffled by `seed`), the next `prefetch` read in background threads (`threads`,
        default: the cores beside this one, at most `prefetch`) while the current one is used, into pinned
        memory when CUDA is present. The same batches whatever `prefetch` and `threads`. A batch's memory is
        used again for a later batch once nothing refers to it (see RecycledArrays)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        memory = RecycledArrays()
        jobs = (partial(self._read_batch, order[i:i + batch_size].tolist(), memory.empty)
                for i in range(0, stop, batch_size))
        return iter(Prefetcher(jobs, prefetch, threads, pin_memory=torch.cuda.is_available()))

    def _read_batch(self, positions: list[int], empty: Callable[..., np.ndarray]) -> Item:
        return self._batch([self._values(p) for p in positions], empty)

    def loader(self, batch_size: int, num_workers: int = 0, shuffle: bool = False, **kwargs: Any) -> DataLoader:
        """A DataLoader over this dataset with its collate_fn and, when CUDA is present, pinned batches. With
        workers: persistent ones, started by a forkserver (a worker forked from this process could not run
        numba's OpenMP kernels once this process has, see derived.py) that has the reader and the
        representations imported already, so each worker starts in a fraction of a second; like any
        forkserver or spawn DataLoader, a script using it needs the `if __name__ == "__main__":` guard.
        `kwargs` go to the DataLoader and win over these."""
        defaults: dict[str, Any] = {"collate_fn": self.collate_fn, "pin_memory": torch.cuda.is_available()}
        if num_workers > 0:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["__main__", __name__, "vre_fast.representations"])
            defaults.update(persistent_workers=True, multiprocessing_context=context)
        return DataLoader(self, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                          **{**defaults, **kwargs})

    def __repr__(self) -> str:
        return (f"VREDataset({self.store.root}, {self.store.kind}, {len(self)} frames, {self.names}"
                + (f", derived {list(self.derived.nodes)}" if self.derived.nodes else "") + ")")

    @classmethod
    def from_shards(cls, path: Path | str, representations: Sequence[str] | None = None, **kwargs: Any) -> VREDataset:
        """The same reader over shards written by `vre-fast export-shards`."""
        from .shards import ShardStore

        return cls(ShardStore(Path(path)), representations, **kwargs)
