"""Sniffing: a path's kind from its metadata and magic bytes, nothing parsed."""

from __future__ import annotations

import pickle

import pytest

from modelport.core.errors import ModelFileError
from modelport.loading.sniff import HDF5_MAGIC, ZIP_MAGIC, check_path, sniff


@pytest.mark.parametrize("name, head, kind", [
    ("m.h5", HDF5_MAGIC + b"rest", "h5"),
    ("m.hdf5", HDF5_MAGIC, "h5"),
    ("m.keras", ZIP_MAGIC + b"rest", "keras"),
    ("weird.bin", HDF5_MAGIC, "h5"),  # the bytes decide, not the name
])
def test_magic_bytes_decide_the_kind(tmp_path, name, head, kind):
    p = tmp_path / name
    p.write_bytes(head)
    assert sniff(p) == kind


@pytest.mark.parametrize("name, head, message", [
    ("m.keras", HDF5_MAGIC, "named .keras but is an HDF5 file"),
    ("m.h5", ZIP_MAGIC, "named .h5 but is a zip"),
    ("m.h5", pickle.dumps({"a": 1}, protocol=4), "looks like a Python pickle"),
    ("m.pkl", b"(dp0\n", "looks like a Python pickle"),
    ("m.onnx", b"\x08\x07\x12\x04", "unsupported file type .onnx"),
    ("m.h5", b"<!DOCTYPE html>", "not an HDF5 or .keras file"),
    ("m.h5", b"\xff\xd8\xff\xe0JFIF", "not an HDF5 or .keras file"),
])
def test_everything_else_is_refused_with_its_reason(tmp_path, name, head, message):
    p = tmp_path / name
    p.write_bytes(head)
    with pytest.raises(ModelFileError, match=message):
        sniff(p)


def test_check_path_names_each_problem(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        check_path(tmp_path / "absent.h5")
    with pytest.raises(ModelFileError, match="is a directory"):
        check_path(tmp_path)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        check_path(empty)
    good = tmp_path / "good.h5"
    good.write_bytes(HDF5_MAGIC)
    assert check_path(good) == good
