"""sipline.swml is pure: it reads the actions vocabulary, the standard library and PyYAML, and no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import sipline.swml

PACKAGE = Path(sipline.swml.__file__).parent
IO = {"socket", "asyncio", "ssl", "selectors", "time", "urllib.request", "http", "http.client", "subprocess", "os"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_swml_imports_only_the_actions_vocabulary_of_sipline():
    for path in sorted(PACKAGE.glob("*.py")):
        ours = {name for name in _imports(path) if name.startswith("sipline")}
        outside = {name for name in ours if name != "sipline.handlers.actions" and not name.startswith("sipline.swml")}
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_swml_does_no_io_and_reads_no_clock():
    for path in sorted(PACKAGE.glob("*.py")):
        assert not _imports(path) & IO, f"{path.name} imports {sorted(_imports(path) & IO)}"
