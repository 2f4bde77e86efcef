"""What ``validate --layers`` costs over plain ``validate``, on MobileNetV2 (224x224,
alpha 1.0, seeded weights, BatchNorm calibrated): both run side by side in one process on
the same model and the same four artifacts, alternately, and the ratio of their medians
is printed. The target is at most 3x.

    PYTHONPATH=. python benchmarks/layers_cost.py [--repeats 2] [--size 224]
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--repeats", type=int, default=2)
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
        validate(source, Path(tmp) / "out")  # warm-up: first runs compile kernels
        plain, layers = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            validate(source, Path(tmp) / "out")
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = validate(source, Path(tmp) / "out", layers=True)
            layers.append(time.perf_counter() - t0)
        for r in report.results:
            counts = r.name_map.counts() if r.name_map is not None else {}
            print(f"  {r.format:10s} {'PASS' if r.passed else 'FAIL'}  layers compared "
                  f"{len(r.layers or [])}, map {counts}, first divergent "
                  f"{r.first_divergent_layer}")
        a, b = statistics.median(plain), statistics.median(layers)
        print(f"validate: {a:.1f} s   validate --layers: {b:.1f} s   ratio {b / a:.2f}x "
              f"(target <= 3x; runs {['%.1f' % x for x in plain]} / "
              f"{['%.1f' % x for x in layers]})")


if __name__ == "__main__":
    main()
