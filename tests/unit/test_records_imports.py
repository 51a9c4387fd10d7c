"""The records package and the compare/history commands run without pytest and torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_edgeenergy

PACKAGE = Path(pytest_edgeenergy.__file__).parent

# Runs a command in-process, then prints which of the heavy modules it imported.
PROBE = """
import json, sys
from pytest_edgeenergy.__main__ import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pytest", "_pytest", "torch"))
print(json.dumps({"status": status, "heavy": heavy}))
"""


def _probe(tmp_path: Path, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=120)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("command", ["compare", "history"])
def test_compare_and_history_import_neither_pytest_nor_torch(tmp_path: Path,
                                                            command: str) -> None:
    """Both commands read saved runs with the records package alone."""
    history = tmp_path / ".edgeenergy"
    history.mkdir()
    result = _probe(tmp_path, command, "--dir", str(history))
    assert result["status"] == 2  # no saved runs: bad input, reported without a traceback
    assert result["heavy"] == []


def test_every_records_module_imports_without_pytest_and_torch(tmp_path: Path) -> None:
    """Each module of pytest_edgeenergy.records, imported alone, pulls in neither."""
    names = sorted(p.stem for p in (PACKAGE / "records").glob("*.py") if p.stem != "__init__")
    assert "baseline" in names and "report" in names
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module('pytest_edgeenergy.records.' + name)\n"
            "print(json.dumps(sorted(m for m in sys.modules\n"
            "                        if m.split('.')[0] in ('pytest', '_pytest', 'torch'))))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == []


def _type_checking_names() -> set[str]:
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                names.update(alias.name for alias in statement.names)
    return names


def test_the_lazy_public_api_lists_each_name_once_everywhere() -> None:
    """The package's lazy table, its type-checking imports and ``__all__`` name the same
    things, and every name resolves."""
    lazy = {name for names in pytest_edgeenergy._API.values() for name in names}
    assert lazy == _type_checking_names()
    assert set(pytest_edgeenergy.__all__) == lazy | {"__version__"}
    for name in sorted(lazy):
        assert getattr(pytest_edgeenergy, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        pytest_edgeenergy.nothing_here  # noqa: B018 - the access is the test
