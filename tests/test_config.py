"""Config and graph validation: every mistake is rejected before any frame is decoded, naming the key."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import vre_fast.representations as representations_pkg
from vre_fast import ConfigError, GraphError, RunOptions, load_config, parse_config, run
from vre_fast._builder import build_graph
from vre_fast._registry import _representation_classes

NORMALS = {"type": "normals_svd", "parameters": {"sensor_fov": 75}}


def graph(reprs: dict, **top):
    return build_graph(parse_config({**top, "representations": reprs}))


def test_topological_order_and_repeated_types():
    g = graph({
        "n1": {**NORMALS, "dependencies": ["d1"]},
        "d1": {"type": "external", "parameters": {"path": "a"}},
        "d2": {"type": "external", "parameters": {"path": "b"}},
        "n2": {**NORMALS, "dependencies": {"depth": "d2"}, "parameters": {"sensor_fov": 60, "window_size": 5}},
    })
    order = [n.name for n in g.nodes]
    assert order.index("d1") < order.index("n1") and order.index("d2") < order.index("n2")
    assert g["n1"].representation.params.window_size == 11 and g["n2"].representation.params.window_size == 5
    assert g["n2"].inputs == {"depth": "d2"}


def test_an_aliased_type_records_the_name_its_config_used():
    """`external` and `from_disk` name one class; the registrar used to write the first name it saw onto the class,
    so a `type: external` node was recorded as `from_disk`."""
    from vre_fast.representations.external import External

    assert "type_name" not in vars(External)  # registration lives in the registry only
    g = graph({"a": {"type": "external", "parameters": {"path": "a"}},
               "b": {"type": "from_disk", "parameters": {"path": "b"}},
               "n": {**NORMALS, "dependencies": ["a"]}})
    assert g["a"].representation.definition()["type"] == "external"
    assert g["b"].representation.definition()["type"] == "from_disk"
    assert g["n"].representation.definition()["inputs"]["depth"]["type"] == "external"


def test_an_unknown_node_is_a_key_error_naming_it_and_the_known_ones():
    g = graph({"a": {"type": "rgb"}})
    with pytest.raises(KeyError, match=r"no representation 'b' in the graph; its nodes: \['a'\]"):
        g["b"]


def test_cycle_names_its_nodes():
    with pytest.raises(GraphError, match=r"cycle \(x -> y: x depends on y\): a -> c -> b -> a"):
        graph({"a": {"type": "binary_mask", "dependencies": ["c"], "parameters": {"classes": [1]}},
               "b": {"type": "binary_mask", "dependencies": ["a"], "parameters": {"classes": [1]}},
               "c": {"type": "binary_mask", "dependencies": ["b"], "parameters": {"classes": [1]}}})


@pytest.mark.parametrize("reprs, match", [
    ({"x": {"type": "nope"}}, r"representations\.x\.type: unknown representation type 'nope'"),
    ({"x": {**NORMALS, "dependencies": ["ghost"]}}, r"representations\.x\.dependencies: unknown representation 'ghost'"),
    ({"x": NORMALS}, r"representations\.x\.dependencies: 'normals_svd' needs input\(s\) \['depth'\]"),
    ({"x": {"type": "rgb", "dependencies": ["y"]}, "y": {"type": "rgb"}}, r"representations\.x\.dependencies: 'rgb' takes at most 0"),
    ({"x": {"type": "normals_svd", "dependencies": {"dept": "y"}}, "y": {"type": "rgb"}}, r"has no input\(s\) \['dept'\]"),
    ({"x": {"type": "edges_canny", "parameters": {"threshold1": "high"}}}, r"representations\.x\.parameters\.threshold1: expected float"),
    ({"x": {"type": "edges_canny", "parameters": {"aperture_size": 4}}}, r"representations\.x\.parameters: aperture_size must be 3, 5 or 7"),
    ({"x": {"type": "edges_canny", "parameters": {"treshold1": 3}}}, r"representations\.x\.parameters: unknown parameter\(s\) \['treshold1'\]"),
    ({"x": {"type": "external"}}, r"representations\.x\.parameters: missing required parameter\(s\) \['path'\]"),
    ({"x": {"type": "rgb", "batch_size": 0}}, r"representations\.x\.batch_size: expected a positive integer"),
    ({"x": {"type": "rgb", "output_formats": ["tiff"]}}, r"representations\.x\.output_formats: unknown format"),
    ({"x": {"type": "rgb", "colour": 1}}, r"representations\.x: unknown key\(s\) \['colour'\]"),
    ({"x": {"type": "optical_flow_classical", "parameters": {"method": "lk"}}}, r"parameters\.method: expected one of \['dis', 'farneback'\]"),
    ({"x": {**NORMALS, "dependencies": ["d"], "parameters": {"sensor_fov": 75, "intrinsics": [1, 1, 1, 1]}},
      "d": {"type": "external", "parameters": {"path": "p"}}}, r"exactly one of 'sensor_fov'"),
    ({"m": {"type": "binary_mask", "dependencies": ["s"], "parameters": {"classes": ["tree"]}},
      "s": {"type": "external", "parameters": {"path": "p"}}}, r"representations\.m: class name 'tree' needs 's' to declare"),
    ({"m": {"type": "binary_mask", "dependencies": ["s"], "parameters": {"classes": ["tree"]}},
      "s": {"type": "external", "parameters": {"path": "p", "classes": ["sky", "road"]}}}, r"'s' has no class 'tree'"),
    ({"m": {"type": "safe_landing", "dependencies": ["s"], "parameters": {"safe_classes": [1]}},
      "s": {"type": "external", "parameters": {"path": "p"}}}, r"'safe_classes' and a 'semantic' dependency go together"),
])
def test_bad_graphs_name_the_key(reprs, match):
    with pytest.raises(ConfigError, match=match):
        graph(reprs)


def test_global_section_and_overrides():
    cfg = parse_config({"batch_size": 4, "output_formats": ["npz", "png"], "representations": {
        "a": {"type": "rgb"}, "b": {"type": "hsv", "batch_size": 2, "output_formats": "jpg"}}},
        overrides={"batch_size": 16, "compress": True})
    a, b = cfg.representations
    assert (a.batch_size, a.output_formats, a.compress) == (16, ("npz", "png"), 6)  # true: level 6
    assert (b.batch_size, b.output_formats, b.compress) == (2, ("jpg",), 6)
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) \['batchsize'\]"):
        parse_config({"batchsize": 3, "representations": {"a": {"type": "rgb"}}})


def test_yaml_is_loaded_safely(tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("representations: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_config_errors_come_before_the_video_is_opened(tmp_path: Path):
    cfg = parse_config({"representations": {"x": {"type": "nope"}}})
    with pytest.raises(ConfigError):
        run(tmp_path / "does-not-exist.mp4", cfg, tmp_path / "out", RunOptions(progress=False))
    assert not (tmp_path / "out").exists()


def test_every_representation_file_is_imported_by_the_package_and_registers_a_type():
    files = sorted(info.name for info in pkgutil.iter_modules(representations_pkg.__path__)
                   if not info.name.startswith("_"))
    # in a fresh interpreter: here other tests may have imported a file the package's list forgets
    imported = subprocess.run([sys.executable, "-c", "import sys, vre_fast.representations; "
                               "print(*sorted(m.rsplit('.', 1)[1] for m in sys.modules "
                               "if m.startswith('vre_fast.representations.')))"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert [name for name in files if name not in imported] == []
    for name in files:
        module = importlib.import_module(f"vre_fast.representations.{name}")
        assert any(cls.__module__ == module.__name__ for cls in _representation_classes.values()), name


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_build(path: Path):
    assert build_graph(load_config(path)).nodes
