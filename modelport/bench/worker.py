"""One measurement, in a fresh process: ``python -m modelport.bench.worker SPEC.json``.

The parent (``modelport.bench``) writes the spec: the artifact (or the Keras model), the
feeds (``.npz``, in the model's layout and names), the layouts, threads and run counts;
this process imports the runtime, opens the artifact through its format's runner, runs
it, and writes the figures to the spec's ``result`` path. Its peak memory is its own.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["measure", "rss_mb"]


def rss_mb(field: str = "VmHWM") -> float:
    """This process's resident memory (``VmRSS``) or its high-water mark (``VmHWM``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _version(module: str) -> str:
    dists = metadata.packages_distributions().get(module.split(".")[0]) or [module]
    try:
        return f"{dists[0]} {metadata.version(dists[0])}"
    except metadata.PackageNotFoundError:
        return module


def _keras(spec: dict[str, Any]) -> tuple[Callable, str]:
    from modelport.loading.source import load

    source = load(spec["path"], custom_objects=spec.get("custom_objects") or None,
                  trust_lambda=bool(spec.get("trust_lambda")))
    keras = "keras" if source.framework == "keras3" else "tf_keras"
    return source.predict, f"{_version('tensorflow')}, {_version(keras)}"


def _artifact(spec: dict[str, Any], feeds: dict[str, np.ndarray]
              ) -> tuple[Callable, dict[str, np.ndarray]]:
    """The runner's ``run`` and the feeds as the artifact takes them (its names and
    layout; the batch it fixes), prepared once so that only the runtime is timed."""
    from modelport import converters
    from modelport.validators.layout import to_layout
    from modelport.validators.run import bind

    runner = converters.get(spec["format"]).load(spec["path"], threads=spec["threads"])
    binding = bind(runner, list(feeds), [t.name for t in runner.outputs])
    declared = spec.get("declared_layout") or {}
    model_layout = spec.get("model_layout") or {}
    fixed = runner.fixed_batch or next(
        (t.shape[0] for t in runner.inputs if t.shape and isinstance(t.shape[0], int)
         and t.shape[0] > 0), None)
    prepared = {}
    for name, x in feeds.items():
        x = to_layout(x, model_layout.get(name), declared.get(name) or model_layout.get(name))
        if fixed and len(x) != fixed:  # the batch the artifact was exported with
            x = np.resize(x, (fixed, *x.shape[1:]))
        target = binding.artifact_input(name)
        want = np.dtype(target.dtype) if target.dtype else x.dtype
        # a float artifact input gets floats of its width; quantized (integer) inputs of a
        # float feed are the runner's to quantize
        if want.kind == x.dtype.kind and want != x.dtype:
            x = x.astype(want)
        prepared[target.name] = np.ascontiguousarray(x)
    return runner.run, prepared


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Import, load, first inference, then ``warmup`` + ``runs`` timed calls."""
    threads = int(spec["threads"])
    with np.load(spec["feeds"]) as data:
        feeds = {k: data[k] for k in data.files}
    runtime = spec["runtime"]
    t0 = time.perf_counter()
    importlib.import_module(runtime)
    if spec["format"] != "keras":
        # the readers modelport's runner uses besides the runtime (onnx, flatbuffers...):
        # imported here so that the load time is the artifact's, not Python's
        from modelport import converters

        converters.get(spec["format"]).describe(spec["path"], nodes=False)
    import_s = time.perf_counter() - t0
    if runtime == "tensorflow" or spec["format"] == "keras":
        from modelport.converters.savedmodel import set_tf_threads

        set_tf_threads(threads)
    runtime_rss = rss_mb("VmRSS")
    t0 = time.perf_counter()
    if spec["format"] == "keras":
        run, version = _keras(spec)
        prepared = feeds
    else:
        run, prepared = _artifact(spec, feeds)
        version = _version(runtime)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(prepared)
    first_s = time.perf_counter() - t0
    for _ in range(int(spec["warmup"])):
        run(prepared)
    times = np.empty(int(spec["runs"]))
    for i in range(len(times)):
        t0 = time.perf_counter()
        run(prepared)
        times[i] = time.perf_counter() - t0
    batch = len(next(iter(prepared.values()))) if prepared else 1
    ms = times * 1e3
    return {
        "pid": os.getpid(), "runtime": version, "threads": threads, "batch": batch,
        "import_s": import_s, "load_s": load_s, "first_s": first_s,
        "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
        "throughput": batch * len(times) / float(times.sum()),
        "runtime_rss_mb": runtime_rss, "peak_rss_mb": rss_mb("VmHWM"),
    }


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = {"ok": True, **measure(spec)}
    except Exception as e:  # reported in the parent's table; the other artifacts go on
        from modelport.core.text import one_line

        result = {"ok": False, "error": one_line(e, with_type=False), "pid": os.getpid()}
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":  # pragma: no cover - run by modelport.bench in a child process
    sys.exit(main(sys.argv[1]))
