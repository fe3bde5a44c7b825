"""Golden files: a rendering compared byte for byte with the file that fixes it.

After a deliberate change, rerun the tests with ``NIMBO_UPDATE_GOLDEN=1`` (the files are
rewritten) and review the diff of ``tests/fixtures/`` before committing.
"""

from __future__ import annotations

import os
from pathlib import Path


def assert_golden(directory: Path, name: str, actual: bytes | str) -> None:
    """``actual`` equals ``directory/name`` (or rewrites it with ``NIMBO_UPDATE_GOLDEN=1``)."""
    data = actual.encode() if isinstance(actual, str) else actual
    path = directory / name
    if os.environ.get("NIMBO_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"golden file {name} missing; run with NIMBO_UPDATE_GOLDEN=1"
    expected = path.read_bytes()
    assert data == expected, (
        f"{name} differs from its golden file:\n--- expected\n"
        f"{expected.decode(errors='replace')}\n--- actual\n{data.decode(errors='replace')}"
    )
