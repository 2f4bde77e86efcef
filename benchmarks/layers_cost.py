"""What ``validate --layers`` costs over plain ``validate``, on MobileNetV2 (224x224,
alpha 1.0, seeded weights, BatchNorm calibrated), on the same model and the same four
artifacts, run alternately, the ratio of their medians printed: as a user runs them (the
command line, a fresh process each), and inside one process (the first run of each, then
warm runs). The target is at most 3x.

    PYTHONPATH=. python benchmarks/layers_cost.py [--repeats 2] [--size 224]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(directory: Path, size: int) -> Path:
    import keras
    import numpy as np

    from modelport.fixtures.base import calibrate_batchnorm

    keras.utils.set_random_seed(7)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(size, size, 3))
    calibrate_batchnorm(model, np.random.default_rng(0).uniform(-1, 1, (8, size, size, 3))
                        .astype("float32"))
    path = directory / "mobilenet_v2.keras"
    model.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    from modelport.conversion import convert
    from modelport.loading.source import load
    from modelport.validators.validation import validate

    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        path = build(Path(tmp), args.size)
        source = load(path)
        t0 = time.perf_counter()
        manifest = convert(source, Path(tmp) / "out", formats="all")
        print(f"converted in {time.perf_counter() - t0:.1f} s: "
              + ", ".join(a.format for a in manifest.artifacts if a.ok))
        out = Path(tmp) / "out"

        def timed(layers: bool) -> tuple[float, object]:
            t0 = time.perf_counter()
            report = validate(source, out, layers=layers)
            return time.perf_counter() - t0, report

        # the first run of each (TensorFlow traces and compiles; --layers builds its
        # sub-model and freezes the SavedModel's graph), then alternating warm runs
        cold_plain, _ = timed(False)
        cold_layers, report = timed(True)
        plain, layers = [], []
        for _ in range(args.repeats):
            plain.append(timed(False)[0])
            layers.append(timed(True)[0])
        cli_plain, cli_layers = [], []
        for _ in range(args.repeats):
            for flag, times in (([], cli_plain), (["--layers"], cli_layers)):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "modelport", "validate", str(path),
                                str(out)] + flag, capture_output=True, check=False)
                times.append(time.perf_counter() - t0)
        for r in report.results:
            counts = r.name_map.counts() if r.name_map is not None else {}
            print(f"  {r.format:10s} {'PASS' if r.passed else 'FAIL'}  layers compared "
                  f"{len(r.layers or [])}, map {counts}, first divergent "
                  f"{r.first_divergent_layer}")
        c, d = statistics.median(cli_plain), statistics.median(cli_layers)
        print(f"command line (median of {args.repeats}, fresh process each): modelport "
              f"validate {c:.1f} s, --layers {d:.1f} s, ratio {d / c:.2f}x (runs "
              f"{['%.1f' % x for x in cli_plain]} / {['%.1f' % x for x in cli_layers]})")
        a, b = statistics.median(plain), statistics.median(layers)
        print(f"first run: validate {cold_plain:.1f} s, validate --layers {cold_layers:.1f} s, "
              f"ratio {cold_layers / cold_plain:.2f}x")
        print(f"warm (median of {args.repeats}): validate {a:.1f} s, validate --layers "
              f"{b:.1f} s, ratio {b / a:.2f}x (target <= 3x; runs "
              f"{['%.1f' % x for x in plain]} / {['%.1f' % x for x in layers]})")


if __name__ == "__main__":
    main()
