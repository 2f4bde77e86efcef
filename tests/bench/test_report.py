"""The bench table: the Keras ratio column, failed rows with their reason below the table,
and same-named artifacts from two directories told apart."""

from __future__ import annotations

from modelport.bench.report import BenchReport, BenchResult


def _result(path: str, fmt: str, p50: float, **kw) -> BenchResult:
    return BenchResult(path=path, format=fmt, size_bytes=2048, batch=1, runtime=f"{fmt} 1.0",
                       threads=1, pid=7, import_s=0.1, load_s=0.2, first_s=0.01,
                       p50_ms=p50, p90_ms=p50 * 1.5, p99_ms=p50 * 2, mean_ms=p50,
                       throughput=1000 / p50, runtime_rss_mb=50.0, peak_rss_mb=60.0, **kw)


def _report(results: list[BenchResult]) -> BenchReport:
    return BenchReport(results, threads=2, runs=10, warmup=1, batch=1, inputs={},
                       versions={}, parent_pid=1)


def test_ratio_to_keras_and_directories_for_same_names():
    text = _report([_result("m.keras", "keras", 4.0), _result("a/m.tflite", "tflite", 1.0),
                    _result("b/m.tflite", "tflite", 2.0)]).text()
    rows = {line.split()[0]: line for line in text.splitlines()[2:5]}
    assert set(rows) == {"m.keras", "a/m.tflite", "b/m.tflite"}
    assert rows["a/m.tflite"].rstrip().endswith("4.00x")
    assert rows["b/m.tflite"].rstrip().endswith("2.00x")
    assert "2 intra-op thread(s)" in text and "keras 1.0; tflite 1.0" in text


def test_failed_rows_and_exit_code():
    report = _report([_result("m.onnx", "onnx", 1.0),
                      BenchResult("m.tflite", "tflite", ok=False, error="LiteRT cannot open it")])
    assert report.exit_code == 2 and not report.ok
    text = report.text()
    assert "vs keras" not in text
    assert "FAILED m.tflite: LiteRT cannot open it" in text
    assert report.to_dict()["results"][1]["error"] == "LiteRT cannot open it"
