"""``modelport convert --to all`` against the workflow users run today, side by side in one
run: the four anchor processes (``benchmarks/anchors/``: ``model.export``, a freeze
script, ``TFLiteConverter.from_keras_model``, then the tf2onnx CLI on that SavedModel),
and ``modelport convert`` with ``--no-check``, the default check and ``--validate``, on
MobileNetV2 224x224 (built by code: ``weights=None``, seeded weights, BatchNorm
calibrated), then on a 10-model zoo (``modelport/fixtures/zoo``): the anchors once per
model against one ``modelport convert ZOO... --jobs 2``. Runs alternate, each in fresh
processes; medians of ``--repeats``. Printed: wall, CPU (user+system, children included),
peak memory (the process tree's summed PSS at its highest, sampled near the RSS peaks: a helper
process sharing TensorFlow's libraries with its parent is not counted twice; and the
largest single process's peak RSS, "1 proc") and the ratios; the step costs from modelport's manifests; and whether every zoo model's batch
artifacts equal a one-model run's (bytes where convert is byte-deterministic, names and
graph structure otherwise).

    PYTHONPATH=. python benchmarks/convert_bench.py [--repeats 3] [--zoo-repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
ANCHORS = Path(__file__).resolve().parent / "anchors"
ZOO = ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet50", "densenet121",
       "inception_v3", "xception", "sequential_cnn", "unet", "conv1d")
MODES = {"no check": ["--no-check"], "check": [], "--validate": ["--validate"],
         "check --overlap": ["--overlap"]}


@dataclass
class Cost:
    wall: float = 0.0
    cpu: float = 0.0
    peak: int = 0  # bytes: the process tree's summed PSS at its highest
    failed: int = 0
    rss: int = 0  # bytes: the largest single process's peak RSS

    def then(self, other: "Cost") -> "Cost":
        """Two runs one after the other."""
        return Cost(self.wall + other.wall, self.cpu + other.cpu, max(self.peak, other.peak),
                    self.failed + other.failed, max(self.rss, other.rss))


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _pss(pid: int) -> int:
    """Proportional set size in bytes: pages shared between processes (TensorFlow's
    libraries, mapped by a parent and its helper) counted once over all of them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(cmd: list[str], cwd: Path | None = None) -> Cost:
    """Run ``cmd`` to the end: wall time, CPU of it and its children, the peak of the
    process tree's summed PSS (sampled every 50 ms) and its largest process's RSS."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        # RSS (cheap) every 50 ms; PSS (the kernel walks every page: costly) only at a
        # new high of the RSS (1% above the last one read), where the peak is: reading
        # it at every tick near the peak made this sampler use ~30% of a core, which a
        # 2-core machine takes from the process measured; the tree is listed every 0.5 s
        tree, top, tick = [proc.pid], 0, 0
        while not done.wait(0.05):
            if tick % 10 == 0:
                tree = _tree(proc.pid)
            tick += 1
            rss = sum(_rss(pid) for pid in tree)
            if rss > 1.01 * top:
                top = rss
                peak[0] = max(peak[0], sum(_pss(pid) for pid in tree))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    failed = int(proc.returncode != 0)
    if failed:
        print(f"    ! exit {proc.returncode}: {' '.join(cmd[1:4])}...: "
              f"{err.decode(errors='replace').strip().splitlines()[-1:]}", flush=True)
    # ru_maxrss (KiB): the largest single process of the tree
    return Cost(wall, usage.ru_utime + usage.ru_stime, peak[0], failed,
                usage.ru_maxrss * 1024)


def anchors(model: Path, out: Path) -> Cost:
    """The four processes a user runs today, one after the other."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    py = sys.executable
    sm = out / "model_savedmodel"
    cost = run([py, str(ANCHORS / "export_savedmodel.py"), str(model), str(sm)])
    cost = cost.then(run([py, str(ANCHORS / "freeze_graph.py"), str(model),
                          str(out / "model.pb")]))
    cost = cost.then(run([py, str(ANCHORS / "to_tflite.py"), str(model),
                          str(out / "model.tflite")]))
    return cost.then(run([py, "-m", "tf2onnx.convert", "--saved-model", str(sm),
                          "--output", str(out / "model.onnx"), "--opset", "17"]))


def modelport(models: list[Path], out: Path, flags: list[str]) -> Cost:
    shutil.rmtree(out, ignore_errors=True)
    return run([sys.executable, "-m", "modelport", "convert", *map(str, models), "--to", "all",
                "--out", str(out), *flags])


def steps(manifest: Path) -> dict[str, float]:
    """The step costs a manifest records: load, and per format its route and its check."""
    m = json.loads(manifest.read_text())
    found = {"load": m["source"].get("load_seconds", 0.0)}
    for a in m["artifacts"]:
        found[a["format"]] = a.get("seconds", 0.0)
        check = a.get("check") or {}
        if check.get("seconds") is not None:
            found[f"{a['format']} check"] = check["seconds"]
    return found


def build_mobilenet(directory: Path, size: int) -> Path:
    path = directory / f"mobilenet_v2_{size}.keras"
    if path.exists():
        return path
    code = (
        "import sys, keras, numpy as np\n"
        "from modelport.fixtures.base import calibrate_batchnorm\n"
        "keras.utils.set_random_seed(7)\n"
        f"m = keras.applications.MobileNetV2(weights=None, input_shape=({size}, {size}, 3))\n"
        f"calibrate_batchnorm(m, np.random.default_rng(0).uniform(-1, 1, (8, {size}, {size}, 3))"
        ".astype('float32'))\n"
        "m.save(sys.argv[1])\n")
    tmp = path.with_suffix(".part.keras")
    subprocess.run([sys.executable, "-c", code, str(tmp)], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    tmp.replace(path)
    return path


def build_zoo(directory: Path) -> list[Path]:
    subprocess.run([sys.executable, "-m", "modelport.fixtures.zoo", "build", str(directory),
                    "--only", *ZOO], check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                   capture_output=True)
    return [directory / f"{name}.keras" for name in ZOO]


def median(costs: list[Cost]) -> Cost:
    return Cost(statistics.median(c.wall for c in costs), statistics.median(c.cpu for c in costs),
                int(statistics.median(c.peak for c in costs)), max(c.failed for c in costs),
                int(statistics.median(c.rss for c in costs)))


def table(rows: list[tuple[str, Cost]], anchor: Cost) -> str:
    lines = [f"  {'':30s} {'wall s':>7s} {'x':>5s} {'CPU s':>7s} {'x':>5s} "
             f"{'peak GiB':>8s} {'x':>5s} {'1 proc':>7s} {'x':>5s}  failed"]
    for name, c in rows:
        lines.append(f"  {name:30s} {c.wall:7.1f} {c.wall / anchor.wall:5.2f} {c.cpu:7.1f} "
                     f"{c.cpu / anchor.cpu:5.2f} {c.peak / 2**30:8.2f} "
                     f"{c.peak / anchor.peak:5.2f} {c.rss / 2**30:7.2f} "
                     f"{c.rss / anchor.rss:5.2f}  {c.failed}")
    return "\n".join(lines)


def same_as_single(batch_out: Path, single_out: Path, name: str) -> list[str]:
    """Where ``name``'s batch artifacts differ from its one-model run's (empty: none)."""
    sys.path.insert(0, str(REPO))
    from modelport import converters

    problems = []
    byte_identical = converters.determinism()["byte_identical"]
    for fmt in converters.names():
        mine = converters.artifact_path(batch_out / name, name, fmt)
        theirs = converters.artifact_path(single_out, name, fmt)
        if not (mine.exists() and theirs.exists()):
            problems.append(f"{fmt}: missing ({mine.exists()}, {theirs.exists()})")
            continue
        if fmt in byte_identical:
            if mine.read_bytes() != theirs.read_bytes():
                problems.append(f"{fmt}: bytes differ")
            continue
        a, b = converters.get(fmt).describe(mine), converters.get(fmt).describe(theirs)
        shape = [([t.to_dict() for t in d.inputs], [t.to_dict() for t in d.outputs],
                  [(n.name, n.op, list(n.inputs)) for n in d.nodes]) for d in (a, b)]
        if shape[0] != shape[1]:
            problems.append(f"{fmt}: names or structure differ")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--zoo-repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench")
    parser.add_argument("--skip-zoo", action="store_true")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"modelport modes to run (comma-separated; 'no check' and "
                        f"'check' are always run): {', '.join(MODES)}")
    args = parser.parse_args()
    modes = {m: MODES[m] for m in MODES
             if m in ("no check", "check") or m in args.modes.split(",")}
    args.cache.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count()
    print(f"modelport convert --to all vs the anchor workflow; {cpus} CPUs; medians of "
          f"{args.repeats} (zoo: {args.zoo_repeats})", flush=True)

    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        work = Path(tmp)
        model = build_mobilenet(args.cache, args.size)
        runs: dict[str, list[Cost]] = {"anchors": [], **{m: [] for m in modes}}
        step_runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for r in range(args.repeats):
            runs["anchors"].append(anchors(model, work / "anchors"))
            for mode, flags in modes.items():
                out = work / "mp"
                runs[mode].append(modelport([model], out, flags))
                step_runs[mode].append(steps(out / f"{model.stem}.manifest.json"))
            print(f"  run {r + 1}: anchors {runs['anchors'][-1].wall:.1f} s, " + ", ".join(
                f"{m} {runs[m][-1].wall:.1f} s" for m in modes), flush=True)
        med = {k: median(v) for k, v in runs.items()}
        print(f"\nMobileNetV2 {args.size}x{args.size} ({model.stat().st_size / 2**20:.1f} MiB)")
        print(table([("anchors (4 processes)", med["anchors"])]
                    + [(f"modelport {m}", med[m]) for m in modes], med["anchors"]))
        base = med["no check"].wall
        print(f"  the default check adds {100 * (med['check'].wall / base - 1):.0f}%"
              + (f", --validate {100 * (med['--validate'].wall / med['check'].wall - 1):.0f}% "
                 f"(over the default check; {100 * (med['--validate'].wall / base - 1):.0f}% "
                 "over --no-check)" if "--validate" in med else ""))
        print("  step costs from the manifests (medians, s):")
        for mode in modes:
            keys = step_runs[mode][0].keys()
            print(f"    {mode:12s} " + ", ".join(
                f"{k} {statistics.median(s.get(k, 0.0) for s in step_runs[mode]):.2f}"
                for k in keys))

        if args.skip_zoo:
            return
        zoo = build_zoo(args.cache / "zoo")
        zruns: dict[str, list[Cost]] = {"anchors": [], "jobs2": []}
        for r in range(args.zoo_repeats):
            total = Cost()
            for path in zoo:
                total = total.then(anchors(path, work / "zoo-anchors"))
            zruns["anchors"].append(total)
            zruns["jobs2"].append(modelport(zoo, work / "zoo-mp", ["--jobs", "2"]))
            print(f"  zoo run {r + 1}: anchors {total.wall:.1f} s, modelport --jobs 2 "
                  f"{zruns['jobs2'][-1].wall:.1f} s", flush=True)
        zmed = {k: median(v) for k, v in zruns.items()}
        print(f"\n{len(zoo)}-model zoo ({', '.join(ZOO)})")
        print(table([("anchors, once per model", zmed["anchors"]),
                     ("modelport --jobs 2", zmed["jobs2"])], zmed["anchors"]))
        print("  batch artifacts vs a one-model run of each:")
        for path in zoo:
            single = work / "single" / path.stem
            modelport([path], single, [])
            problems = same_as_single(work / "zoo-mp", single, path.stem)
            print(f"    {path.stem:22s} {'same' if not problems else '; '.join(problems)}")


if __name__ == "__main__":
    main()
