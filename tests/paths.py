"""Where the tests find the repository and the shared real-world corpus."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = Path(os.environ.get("MODELPORT_CORPUS", SHARED / "corpus" / "public"))
CORPUS2 = Path(os.environ.get("MODELPORT_CORPUS2", SHARED / "corpus" / "public2"))
