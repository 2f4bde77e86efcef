"""Session-wide caches: fixture models built once, and each fixture converted once.

Models are cached under ``.cache/fixtures/<key>/<name>/`` where ``key`` hashes the fixture
builders' source and the framework versions, so repeated local runs skip the builds and
any change to a builder rebuilds. A clean clone builds them on first use. Each fixture is
built into a private temp directory and renamed into place, so parallel pytest sessions
sharing the cache never see half-written files. Set ``MODELPORT_FIXTURE_CACHE=0`` to build
into the session's temp directory instead.
"""

from __future__ import annotations

import os

# before anything imports TensorFlow: its C++ logging is decided at import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import modelport.fixtures as fixtures_pkg
from modelport.fixtures import Fixture, build
from modelport.fixtures.cache import cache_key as fixture_cache_key

from tests.paths import REPO


def cache_key() -> str:
    """Changes whenever a fixture builder (the zoo's excepted) or a framework that writes
    the files changes."""
    return fixture_cache_key(Path(fixtures_pkg.__file__).parent.glob("*.py"))


class FixtureCache:
    """``get(name)`` builds a fixture on first use (or reuses a complete cached build)."""

    RECORD = "fixture.json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._memo: dict[str, Fixture] = {}

    def get(self, name: str) -> Fixture:
        if name not in self._memo:
            self._memo[name] = self._cached(name) or self._build(name)
        return self._memo[name]

    def _cached(self, name: str) -> Fixture | None:
        record = self.root / name / self.RECORD
        if not record.is_file():
            return None
        fx = Fixture.from_dict(json.loads(record.read_text()), record.parent)
        return fx if fx.path.exists() else None

    def _build(self, name: str) -> Fixture:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.root))
        try:
            fx = build(name, tmp)
            (tmp / self.RECORD).write_text(json.dumps(fx.to_dict(), indent=1, default=str))
            try:
                tmp.rename(self.root / name)  # the record appears with its files, or not at all
            except OSError:  # another session finished first; theirs is as good as ours
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        cached = self._cached(name)
        assert cached is not None, f"fixture {name} was not written to {self.root}"
        return cached


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory: pytest.TempPathFactory) -> FixtureCache:
    if os.environ.get("MODELPORT_FIXTURE_CACHE", "1") == "0":
        return FixtureCache(tmp_path_factory.mktemp("fixtures"))
    root = REPO / ".cache" / "fixtures" / cache_key()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only checkout
        root = tmp_path_factory.mktemp("fixtures")
    return FixtureCache(root)


@dataclass
class Converted:
    """One fixture loaded by modelport and converted to every format."""

    fixture: Fixture
    source: Any  # modelport.loading.source.SourceModel
    manifest: Any  # modelport.core.manifest.Manifest
    out_dir: Path

    def artifact_path(self, fmt: str) -> Path:
        record = self.manifest.artifact(fmt)
        assert record is not None, f"{self.fixture.name}: no {fmt} artifact in the manifest"
        return self.out_dir / record.path


class ConvertedCache:
    """``get(name)`` loads and converts a fixture once; a failure is remembered and re-raised
    so every test that needs it fails the same way without repeating the work."""

    def __init__(self, models: FixtureCache, root: Path) -> None:
        self.models = models
        self.root = root
        self._memo: dict[str, Converted | BaseException] = {}

    def get(self, name: str) -> Converted:
        if name not in self._memo:
            try:
                self._memo[name] = self._convert(name)
            except Exception as e:
                self._memo[name] = e
        item = self._memo[name]
        if isinstance(item, BaseException):
            raise item
        return item

    def _convert(self, name: str) -> Converted:
        from modelport.conversion import convert
        from modelport.loading.source import load

        fx = self.models.get(name)
        source = load(fx.path, custom_objects=str(fx.custom_objects) if fx.custom_objects else None)
        out = self.root / name
        manifest = convert(source, out, formats="all")
        return Converted(fx, source, manifest, out)


@pytest.fixture(scope="session")
def converted(fixture_models: FixtureCache,
              tmp_path_factory: pytest.TempPathFactory) -> ConvertedCache:
    return ConvertedCache(fixture_models, tmp_path_factory.mktemp("converted"))
