"""conformance/ is black-box: it imports none of the server's packages."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SERVER_PACKAGES = ("occi", "cdmi", "gateway", "auth", "backends")
PACKAGE = Path(__file__).resolve().parents[2] / "conformance"


def test_importing_every_suite_loads_no_server_module() -> None:
    code = (
        "import json, sys, pkgutil, importlib, conformance, conformance.cli\n"
        "for m in pkgutil.walk_packages(conformance.__path__, 'conformance.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    loaded = json.loads(answer.stdout)
    assert "conformance.occi" in loaded
    offending = [m for m in loaded if m.split(".")[0] in SERVER_PACKAGES]
    assert offending == []


def test_no_source_file_names_a_server_package() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in SERVER_PACKAGES, f"{path} imports {name}"
