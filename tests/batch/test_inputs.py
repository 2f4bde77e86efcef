"""Which models a batch takes: directory expansion, output names, shards (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.batch import expand, in_shard, parse_shard
from modelport.core.errors import UserInputError


def _touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_directories_expand_recursively_in_sorted_order(tmp_path):
    zoo = tmp_path / "zoo"
    _touch(zoo, "b.keras", "a.h5", "sub/c.HDF5", "notes.txt", ".hidden.h5", ".cache/d.h5",
           "out/e.h5")
    items = expand([str(zoo), str(tmp_path / "single.h5")], exclude=zoo / "out")
    assert [i.rel for i in items] == ["a.h5", "b.keras", "sub/c.HDF5", "single.h5"]
    assert [i.position for i in items] == [0, 1, 2, 3]
    # a file argument is taken as given, even when it does not exist (a failed row later)
    assert items[-1].path == tmp_path / "single.h5"


def test_a_file_reached_twice_is_kept_once(tmp_path):
    _touch(tmp_path, "m/a.h5", "m/b.h5")
    items = expand([str(tmp_path / "m" / "b.h5"), str(tmp_path / "m")])
    assert [i.path.name for i in items] == ["b.h5", "a.h5"]


def test_output_names_are_stems_made_unique_when_they_collide(tmp_path):
    _touch(tmp_path, "x/model.h5", "y/model.h5", "x/Model.keras", "x/other.h5",
           "x/batch.jsonl.h5")
    items = expand([str(tmp_path / "x"), str(tmp_path / "y")])
    names = {i.path.relative_to(tmp_path).as_posix(): i.name for i in items}
    assert names["x/other.h5"] == "other"
    colliding = [names["x/model.h5"], names["y/model.h5"], names["x/Model.keras"]]
    assert len({n.casefold() for n in colliding}) == 3  # unique even ignoring case
    assert all(n.lower().startswith("model-") for n in colliding)
    assert names["x/batch.jsonl.h5"] != "batch.jsonl"  # the journal's own name
    # the same arguments give the same names (a resumed run finds its directories)
    again = expand([str(tmp_path / "x"), str(tmp_path / "y")])
    assert [i.name for i in again] == [i.name for i in items]


def test_a_directory_without_models_is_refused(tmp_path):
    _touch(tmp_path, "empty/readme.txt")
    with pytest.raises(UserInputError, match="is a directory with no .h5/.hdf5/.keras file"):
        expand([str(tmp_path / "empty")])


@pytest.mark.parametrize("count", [1, 7, 12])
@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_shards_partition_the_inputs_exactly(tmp_path, count, shards):
    _touch(tmp_path, *[f"z/d{i % 3}/m{i:02d}.h5" for i in range(count)])
    items = expand([str(tmp_path / "z")])
    parts = [[i.path for i in items if in_shard(i, (k, shards))] for k in range(1, shards + 1)]
    flat = [p for part in parts for p in part]
    assert sorted(flat) == sorted(i.path for i in items)  # every input, in one shard only
    assert len(flat) == len(set(flat))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # and the same on another machine expanding the same files
    again = expand([str(tmp_path / "z")])
    assert [[i.path for i in again if in_shard(i, (k, shards))]
            for k in range(1, shards + 1)] == parts


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0", ""])
def test_bad_shards_are_refused(text):
    with pytest.raises(UserInputError, match="expected K/N"):
        parse_shard(text)


def test_good_shard_parses():
    assert parse_shard("2/4") == (2, 4)
