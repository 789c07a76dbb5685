"""Runs inside the original VRE's virtual environment (see reader_throughput.py): VRE 1.18.6's own reader,
MultiTaskDataset (bench/_vre_reader/, from VRE's repository), through a torch DataLoader with its collate_fn,
over a vre-fast output directory (the same `<repr>/npz/<frame>.npz` files VRE writes).

    python _vre_reader_worker.py OUT BATCH_SIZE WORKERS PASSES CLASSES

Prints one JSON line: batches/s, the median of PASSES full passes (VRE's in-process cache of loaded files is emptied
before each, so every pass reads the files, as an epoch over a dataset larger than the cache does), and the
shapes of a batch. With WORKERS, each pass forks its workers anew, so they inherit the emptied cache.
"""

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_vre_reader"))

from multitask_dataset import MultiTaskDataset  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from vre.representations.mixins import np_io_representation_mixin  # noqa: E402
from vre_repository.color.hsv import HSV  # noqa: E402
from vre_repository.color.rgb import RGB  # noqa: E402
from vre_repository.normals import NormalsRepresentation  # noqa: E402
from vre_repository.semantic_segmentation.semantic_representation import SemanticRepresentation  # noqa: E402


def main(out: str, batch_size: int, workers: int, passes: int, classes: int) -> None:
    rgb = RGB("rgb")
    grays = [(i, i, i) for i in range(classes)]
    tasks = {"rgb": rgb, "hsv": HSV("hsv", dependencies=[rgb]), "normals": NormalsRepresentation("normals"),
             "semantic": SemanticRepresentation("semantic", classes=classes, color_map=grays, disk_data_argmax=True)}
    reader = MultiTaskDataset(Path(out), task_names=list(tasks), task_types=tasks, normalization=None,
                              handle_missing_data="raise", cache_task_stats=False)
    loader = DataLoader(reader, batch_size=batch_size, collate_fn=reader.collate_fn, num_workers=workers,
                        persistent_workers=False)  # workers forked per pass inherit the emptied cache
    shapes = {k: list(v.shape) for k, v in next(iter(loader))[0].items()}  # also starts the workers
    rates = []
    for _ in range(passes):
        np_io_representation_mixin._CACHE.clear()
        count, start = 0, time.perf_counter()
        for _batch in loader:
            count += 1
        rates.append(count / (time.perf_counter() - start))
    print(json.dumps({"batches_per_s": statistics.median(rates), "batches": count, "shapes": shapes}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
