"""Writes dronescapes2.yaml (experts) and dronescapes2_external.yaml (the same graph on stored inputs).

    python configs/make_dronescapes2.py

The Dronescapes2 graph of the VRE paper: three Mask2Former segmentations mapped to the 8 Dronescapes
classes and voted into `semantic_output`; Marigold depth and SVD normals from it; five binary maps
(buildings, sky-and-water, transportation, containing, vegetation), each the majority of three per-
segmentation masks; buildings nearby (depth <= 0.3); safe landing from the normals (v2 > 0.8,
v1 + v3 < 1.2, depth <= 0.9), and the same with a majority of safe classes. Class tables follow the
Mapillary Vistas v1.2 (65) and COCO panoptic (133) orders of VRE's checkpoints; classes are written as
ids, so a graph builds before the weights are there. The two orders are the contiguous training ids of
Mask2Former's own metadata (checked name by name against Mask2Former's register_mapillary_vistas.py and
detectron2's builtin_meta.py COCO_CATEGORIES), which HuggingFace's converted checkpoints keep as id2label.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAPILLARY = ["Bird", "Ground Animal", "Curb", "Fence", "Guard Rail", "Barrier", "Wall", "Bike Lane",
             "Crosswalk - Plain", "Curb Cut", "Parking", "Pedestrian Area", "Rail Track", "Road", "Service Lane",
             "Sidewalk", "Bridge", "Building", "Tunnel", "Person", "Bicyclist", "Motorcyclist", "Other Rider",
             "Lane Marking - Crosswalk", "Lane Marking - General", "Mountain", "Sand", "Sky", "Snow", "Terrain",
             "Vegetation", "Water", "Banner", "Bench", "Bike Rack", "Billboard", "Catch Basin", "CCTV Camera",
             "Fire Hydrant", "Junction Box", "Mailbox", "Manhole", "Phone Booth", "Pothole", "Street Light", "Pole",
             "Traffic Sign Frame", "Utility Pole", "Traffic Light", "Traffic Sign (Back)", "Traffic Sign (Front)",
             "Trash Can", "Bicycle", "Boat", "Bus", "Car", "Caravan", "Motorcycle", "On Rails", "Other Vehicle",
             "Trailer", "Truck", "Wheeled Slow", "Car Mount", "Ego Vehicle"]
COCO = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
        "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
        "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
        "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
        "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
        "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
        "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
        "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
        "teddy bear", "hair drier", "toothbrush", "banner", "blanket", "bridge", "cardboard", "counter", "curtain",
        "door-stuff", "floor-wood", "flower", "fruit", "gravel", "house", "light", "mirror-stuff", "net", "pillow",
        "platform", "playingfield", "railroad", "river", "road", "roof", "sand", "sea", "shelf", "snow", "stairs",
        "tent", "towel", "wall-brick", "wall-stone", "wall-tile", "wall-wood", "water-other", "window-blind",
        "window-other", "tree-merged", "fence-merged", "ceiling-merged", "sky-other-merged", "cabinet-merged",
        "table-merged", "floor-other-merged", "pavement-merged", "mountain-merged", "grass-merged", "dirt-merged",
        "paper-merged", "food-other-merged", "building-other-merged", "rock-merged", "wall-other-merged",
        "rug-merged"]

TO_DRONESCAPES = {  # Dronescapes class -> source classes (the rest of COCO's classes go to residential)
    "mapillary": {
        "land": ["Terrain", "Sand", "Snow"], "forest": ["Vegetation"],
        "residential": ["Building", "Utility Pole", "Pole", "Fence", "Wall", "Manhole", "Street Light", "Curb",
                        "Guard Rail", "Caravan", "Junction Box", "Traffic Sign (Front)", "Billboard", "Banner",
                        "Mailbox", "Traffic Sign (Back)", "Bench", "Fire Hydrant", "Trash Can", "CCTV Camera",
                        "Traffic Light", "Barrier", "Rail Track", "Phone Booth", "Curb Cut", "Traffic Sign Frame",
                        "Bike Rack"],
        "road": ["Road", "Lane Marking - General", "Sidewalk", "Bridge", "Other Vehicle", "Motorcyclist", "Pothole",
                 "Catch Basin", "Car Mount", "Tunnel", "Parking", "Service Lane", "Lane Marking - Crosswalk",
                 "Pedestrian Area", "On Rails", "Bike Lane", "Crosswalk - Plain"],
        "little-objects": ["Car", "Person", "Truck", "Boat", "Wheeled Slow", "Trailer", "Ground Animal", "Bicycle",
                           "Motorcycle", "Bird", "Bus", "Ego Vehicle", "Bicyclist", "Other Rider"],
        "water": ["Water"], "sky": ["Sky"], "hill": ["Mountain"]},
    "coco": {
        "land": ["grass-merged", "dirt-merged", "sand", "gravel", "flower", "playingfield", "snow", "platform"],
        "forest": ["tree-merged"],
        "residential": None,
        "road": ["road", "railroad", "pavement-merged", "stairs"],
        "little-objects": ["truck", "car", "boat", "horse", "person", "train", "elephant", "bus", "bird", "sheep",
                           "cow", "motorcycle", "dog", "bicycle", "airplane", "kite"],
        "water": ["river", "water-other", "sea"], "sky": ["sky-other-merged"], "hill": ["mountain-merged"]},
}
TRANSPORT_MAPILLARY = ["Bike Lane", "Crosswalk - Plain", "Curb Cut", "Parking", "Rail Track", "Road", "Service Lane",
                       "Sidewalk", "Bridge", "Tunnel", "Bicyclist", "Motorcyclist", "Other Rider",
                       "Lane Marking - Crosswalk", "Lane Marking - General", "Traffic Light", "Traffic Sign (Back)",
                       "Traffic Sign (Front)", "Bicycle", "Boat", "Bus", "Car", "Caravan", "Motorcycle", "On Rails",
                       "Other Vehicle", "Trailer", "Truck", "Wheeled Slow", "Car Mount", "Ego Vehicle"]
BINARY = {  # map -> (Mapillary classes, COCO classes)
    "buildings": (["Building", "Utility Pole", "Pole", "Fence", "Wall"], ["building-other-merged", "house", "roof"]),
    "sky_and_water": (["Sky", "Water"], ["sky-other-merged", "water-other", "sea", "river"]),
    "transportation": (TRANSPORT_MAPILLARY, ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
                                             "boat", "road", "railroad", "pavement-merged"]),
    "containing": (["Terrain", "Sand", "Mountain", "Road", "Sidewalk", "Pedestrian Area", "Rail Track", "Parking",
                    "Service Lane", "Bridge", "Water", "Curb", "Fence", "Wall", "Guard Rail", "Barrier", "Curb Cut",
                    "Snow"],
                   ["floor-wood", "floor-other-merged", "pavement-merged", "mountain-merged", "platform", "sand",
                    "road", "sea", "river", "railroad", "grass-merged", "snow", "stairs", "tent"]),
    "vegetation": (["Mountain", "Sand", "Snow", "Terrain", "Vegetation"],
                   ["tree-merged", "grass-merged", "dirt-merged", "flower", "potted plant", "river", "sea",
                    "water-other", "mountain-merged", "rock-merged"]),
}
SAFE = (["Terrain", "Sand", "Snow", "Road", "Lane Marking - General", "Sidewalk", "Bridge", "Pothole", "Catch Basin",
         "Tunnel", "Parking", "Service Lane", "Pedestrian Area", "Lane Marking - Crosswalk", "On Rails", "Bike Lane",
         "Crosswalk - Plain", "Mountain", "Vegetation"],
        ["grass-merged", "dirt-merged", "sand", "gravel", "flower", "playingfield", "snow", "road", "platform",
         "railroad", "pavement-merged", "mountain-merged", "roof", "tree-merged", "rock-merged"])
SOURCES = {"m2f_swin_mapillary": "mapillary", "m2f_swin_coco": "coco", "m2f_r50_mapillary": "mapillary"}
CLASSES = {"mapillary": MAPILLARY, "coco": COCO}


def ids(names: list[str], label_set: str) -> list[int]:
    return sorted(CLASSES[label_set].index(n) for n in names)


def graph(external: bool) -> dict:
    hidden = {"output_formats": []}
    reps: dict[str, dict] = {"rgb": {"type": "rgb"}}
    for name, label_set in SOURCES.items():
        variant = {"m2f_swin_mapillary": "swin_large_mapillary", "m2f_swin_coco": "swin_large_coco",
                   "m2f_r50_mapillary": "r50_mapillary"}[name]  # r50: VRE's own checkpoint, converted on load
        if external:
            reps[name] = {"type": "external", "parameters": {"path": f"data/{name}", "classes": CLASSES[label_set]}}
        else:
            reps[name] = {"type": "semantic_mask2former", "parameters": {"variant": variant}}
    reps["depth_marigold"] = ({"type": "external", "parameters": {"path": "data/depth_marigold"}} if external else
                              {"type": "depth_marigold", "parameters": {"variant": "v1_1", "steps": 4}})
    reps["normals_svd_marigold"] = {"type": "normals_svd", "dependencies": ["depth_marigold"],
                                    "parameters": {"sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 11}}
    for name, label_set in SOURCES.items():
        table = TO_DRONESCAPES[label_set]
        rest = sorted(set(CLASSES[label_set]) - {c for v in table.values() if v for c in v})
        reps[f"{name}_converted"] = {"type": "semantic_mapper", "dependencies": [name], "parameters": {"mapping": {
            k: ids(v if v is not None else rest, label_set) for k, v in table.items()}}}
    reps["semantic_output"] = {"type": "semantic_vote", "dependencies": [f"{n}_converted" for n in SOURCES]}

    def voted(name: str, per_set: tuple[list[str], list[str]]) -> None:
        for source, label_set in SOURCES.items():
            classes = per_set[0] if label_set == "mapillary" else per_set[1]
            reps[f"{name}_{source}"] = {"type": "binary_mask", "dependencies": [source],
                                        "parameters": {"classes": ids(classes, label_set)}, **hidden}
        reps[name] = {"type": "mask_vote", "dependencies": [f"{name}_{s}" for s in SOURCES],
                      "parameters": {"mode": "majority"}}

    for name, per_set in BINARY.items():
        voted(name, per_set)
    reps["near"] = {"type": "threshold", "dependencies": ["depth_marigold"], "parameters": {"value": 0.3}, **hidden}
    reps["buildings_nearby"] = {"type": "mask_vote", "dependencies": ["buildings", "near"],
                                "parameters": {"mode": "all"}}
    reps["flat"] = {"type": "safe_landing", "dependencies": ["normals_svd_marigold"],
                    "parameters": {"criterion": "vre"}, **hidden}
    reps["not_far"] = {"type": "threshold", "dependencies": ["depth_marigold"], "parameters": {"value": 0.9}, **hidden}
    reps["safe_landing_no_sseg"] = {"type": "mask_vote", "dependencies": ["flat", "not_far"],
                                    "parameters": {"mode": "all"}}
    voted("safe_classes", SAFE)
    reps["safe_classes"].update(hidden)
    reps["safe_landing_semantics"] = {"type": "mask_vote", "dependencies": ["flat", "not_far", "safe_classes"],
                                      "parameters": {"mode": "all"}}
    return {"batch_size": 4, "output_formats": ["npz"], "compress": True, "representations": reps}


HEADER = """# Generated by configs/make_dronescapes2.py (edit that, not this file).
# {what}
#   vre-fast run VIDEO --config configs/{file} -o OUT
"""

if __name__ == "__main__":
    here = Path(__file__).parent
    for external, file, what in (
            (False, "dronescapes2.yaml", "The Dronescapes2 graph of the VRE paper with its experts (weights offline: "
                                         "Mask2Former Swin-L, Mask2Former R50 from VRE's checkpoint, Marigold)."),
            (True, "dronescapes2_external.yaml", "The same graph on stored expert outputs: data/<name>/<frame>.npz "
                                                 "class maps and Marigold depth in [0, 1].")):
        text = HEADER.format(what=what, file=file) + yaml.safe_dump(graph(external), sort_keys=False, width=116,
                                                                     default_flow_style=None)
        (here / file).write_text(text)
        print("wrote", here / file)
