"""``validate --report report.html``: one self-contained file, checked in a real browser
(headless Chromium, without network) by looking at its screenshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from modelport import converters
from modelport.cli import main
from modelport.validators import faults
from modelport.validators.figures import FAIL_COLOR, PASS_COLOR

WIDTH, HEIGHT = 1200, 2600


def _browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: 'make setup' installs it (Debian: chromium)")
        pytest.skip("chromium not installed (make setup installs it)")
    return found


def _offline() -> list[str]:
    """``unshare -n`` (a network namespace without interfaces) when allowed: the page
    gets no network at all, not only no reason to use one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def screenshot(page, dest, tmp_path) -> np.ndarray:
    """The page rendered by headless Chromium, as an RGB array."""
    import matplotlib.image

    cmd = _offline() + [
        _browser(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={dest}", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert dest.exists(), done.stderr[-2000:]
    return (matplotlib.image.imread(dest)[..., :3] * 255).astype(np.int16)


def _near(img: np.ndarray, hex_color: str, tol: int = 30) -> int:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb).max(axis=-1) <= tol).sum())


@pytest.fixture(scope="module")
def broken_set(tmp_path_factory, request):
    """The 'deep' validator model with its ONNX's middle layer scaled: one FAIL, three PASS."""
    models = request.getfixturevalue("models")
    deep = models.get("deep")
    out = tmp_path_factory.mktemp("html") / "out"
    shutil.copytree(deep.out, out)
    faults.onnx_scale_middle_layer(deep.artifact("onnx"),
                                   converters.artifact_path(out, deep.model.stem, "onnx"), 1.05)
    return deep, out


def test_report_is_self_contained_and_shows_table_and_plots(broken_set, tmp_path, capsys):
    deep, out = broken_set
    page = tmp_path / "report.html"
    report_json = tmp_path / "r.json"
    code = main(["validate", str(deep.model), str(out), "--report", str(page),
                 "--json", str(report_json)])
    assert code == 1
    html = page.read_text()
    # nothing to fetch: no scripts, stylesheets, images or frames from anywhere
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert not re.search(r"(src|href)\s*=\s*[\"'](?!#)", html)  # only in-page references
    assert html.count("<svg") >= 3  # histogram, drift curves, the coloured graph
    data = json.loads(report_json.read_text())
    onnx = next(r for r in data["results"] if r["format"] == "onnx")
    assert onnx["first_divergent_layer"] in html and "first divergent" in html
    img = screenshot(page, tmp_path / "shot.png", tmp_path)
    assert img.shape[:2] == (HEIGHT, WIDTH)
    white = (img.min(axis=-1) >= 245).mean()
    assert white < 0.95, white  # not blank
    assert _near(img, FAIL_COLOR) > 2000  # the FAILED banner and the FAIL cell
    assert _near(img, PASS_COLOR) > 300  # the PASS cells
    assert _near(img, "#1565c0") > 100  # the first artifact's histogram line
    # the top of the page is the red verdict banner (a table row or a plot is not)
    top = img[: HEIGHT // 12]
    assert _near(top, FAIL_COLOR) > 1500


def test_passing_set_report_has_no_divergent_layer(models, tmp_path):
    deep = models.get("deep")
    page = tmp_path / "ok.html"
    assert main(["validate", str(deep.model), str(deep.out), "--report", str(page)]) == 0
    html = page.read_text()
    assert "PASSED: 4 of 4" in html and "no layer past the tolerance" in html
    img = screenshot(page, tmp_path / "ok.png", tmp_path)
    assert _near(img[: HEIGHT // 12], PASS_COLOR) > 1500 and _near(img, FAIL_COLOR) < 2000


def test_layers_json_fields(models, tmp_path, capsys):
    deep = models.get("deep")
    path = tmp_path / "r.json"
    assert main(["validate", str(deep.model), str(deep.out), "--layers",
                 "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "layers onnx:" in text and "every one within tolerance" in text
    data = json.loads(path.read_text())
    for r in data["results"]:
        assert r["first_divergent_layer"] is None
        keys = {"layer", "tensor", "cosine", "sqnr_db", "max_abs_error", "passed"}
        assert r["layers"] and all(keys <= set(l) for l in r["layers"])
        assert {row["layer"] for row in r["name_map"]["rows"]} >= {"conv0", "dw", "logits"}
