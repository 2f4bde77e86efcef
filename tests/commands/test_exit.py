"""``modelport``'s console entry ends the process without the interpreter's teardown once
TensorFlow is imported, yet keeps what a normal exit gives: the exit code, everything
printed, the ``atexit`` handlers; and it waits like a normal exit for a running thread.
Commands that run TensorFlow collect cyclic garbage less often."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = r'''
import atexit, sys, tempfile, threading, time
from pathlib import Path
import tensorflow  # noqa: F401  (what makes the hard exit worth it)
from modelport.cli import leave
out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
kept = tempfile.TemporaryDirectory(dir=out)  # cleaned by its finaliser at exit
(out / "tmpdir").write_text(kept.name)
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(1.0), (out / "thread").write_text("done"))).start()
sys.stdout.write("no newline, not flushed")
leave(3)
'''


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), mode],
                          capture_output=True, text=True, timeout=300)


def test_leave_keeps_code_output_and_exit_handlers(tmp_path):
    proc = _run(tmp_path, "plain")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "no newline, not flushed"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not Path((tmp_path / "tmpdir").read_text()).exists()


def test_leave_waits_for_a_running_thread(tmp_path):
    proc = _run(tmp_path, "thread")
    assert proc.returncode == 3, proc.stderr
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"


def test_python_m_modelport_exits_with_the_command_code(tmp_path):
    missing = tmp_path / "missing.h5"
    proc = subprocess.run([sys.executable, "-m", "modelport", "convert", str(missing),
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "missing.h5" in proc.stderr and "Traceback" not in proc.stderr


GC_PROBE = r'''
import gc, sys
from modelport.cli import main, GC_THRESHOLDS
before = gc.get_threshold()
main(sys.argv[1:])
print(list(before), list(gc.get_threshold()), list(GC_THRESHOLDS), sep='|')
'''


def test_tensorflow_commands_collect_garbage_less_often(tmp_path):
    def thresholds(*argv: str) -> list[str]:
        proc = subprocess.run([sys.executable, "-c", GC_PROBE, *argv], capture_output=True,
                              text=True, timeout=300)
        return proc.stdout.strip().splitlines()[-1].split("|")

    before, after, wanted = thresholds("convert", str(tmp_path / "missing.h5"))
    assert after == wanted != before
    before, after, _ = thresholds("inspect", str(tmp_path / "missing.onnx"))
    assert after == before  # no TensorFlow: Python's defaults
