"""``modelport inspect PATH --plot``: the demo model and each of its four artifacts drawn
by Graphviz, with the Keras input and output names in the picture."""

from __future__ import annotations

import json
import re

import pytest

from modelport import converters
from modelport.cli import main

FORMATS = converters.names()


def _svg_text(path) -> str:
    """The text of an SVG's <text> elements, entities decoded."""
    import html

    return " ".join(html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>",
                                                           path.read_text()))


@pytest.mark.parametrize("what", ["keras"] + list(FORMATS))
def test_demo_model_and_each_artifact_are_drawn_with_keras_io_names(converted, tmp_path, what,
                                                                     capsys):
    conv = converted.get("siamese")
    path = conv.fixture.path if what == "keras" else conv.artifact_path(what)
    dest = tmp_path / f"{what}.svg"
    args = ["inspect", str(path), "--plot", str(dest)]
    if what == "keras":
        args += ["--custom-objects", str(conv.fixture.custom_objects)]
    assert main(args) == 0, capsys.readouterr().err
    text = _svg_text(dest)
    for name in ("input_a", "input_b", "distance"):
        assert re.search(rf"\b{name}\b", text), (name, text[:500])
    assert re.search(r"\[(\?|batch),16\]", text)  # shapes drawn: the towers' 16 features
    if what == "keras":
        assert "base_network#2/base_dense_1" in text and "Lambda" in text


def test_png_and_drift_colours(converted, tmp_path, capsys):
    from modelport.validators.graphs import FAIL_FILL

    conv = converted.get("siamese")
    png = tmp_path / "g.png"
    assert main(["inspect", str(conv.artifact_path("onnx")), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    report = {"results": [{"layers": [
        {"layer": "base_network/base_dense_2", "passed": False},
        {"layer": "distance", "passed": True}]}]}
    drift = tmp_path / "r.json"
    drift.write_text(json.dumps(report))
    svg = tmp_path / "colored.svg"
    assert main(["inspect", str(conv.fixture.path), "--plot", str(svg), "--drift", str(drift),
                 "--custom-objects", str(conv.fixture.custom_objects)]) == 0
    body = svg.read_text()
    # the failed layer's node is filled red, the others not
    node = re.search(r"<g id=\"node\d+\" class=\"node\">(?:(?!</g>).)*base_network/base_dense_2"
                     r"(?!#)(?:(?!</g>).)*</g>", body, re.S)
    assert node is None or FAIL_FILL in node.group(0)
    assert body.count(f'fill="{FAIL_FILL}"') == 1
    assert main(["inspect", str(conv.artifact_path("onnx")), "--plot", str(tmp_path / "x.gif")]) == 2
    assert "unknown picture format" in capsys.readouterr().err
