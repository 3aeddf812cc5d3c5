"""The shape the code promises (README "Code map"): dependencies run one way, commands
load what they need, and no module or function grows past what a reader can hold."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 300


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_data_plane_imports_nothing_from_the_control_plane() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith("reconciler")
        )
        for path in python_files("relay")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_contract_imports_nothing_but_itself_and_the_standard_library() -> None:
    for path in python_files("relay/contract"):
        ours = {m for m in imported_modules(path) if m.startswith(("relay", "reconciler"))}
        allowed = {m for m in ours if m.startswith("relay.contract") or m == "relay.durable"}
        assert ours == allowed, path


def loaded_by(*argv: str, cwd: Path) -> set[str]:
    """The top-level modules a `postform` run loads, from a fresh interpreter."""
    code = (
        "import sys, json\nfrom reconciler.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    code_and_modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert code_and_modules[0] == 0, result.stderr
    return set(code_and_modules[1])


def test_validate_and_plan_load_neither_the_relay_runtime_nor_dns_tooling(tmp_path: Path) -> None:
    (tmp_path / "postform.yaml").write_text(
        (ROOT / "examples" / "quickstart" / "postform.yaml").read_text()
    )
    heavy = {"aiosmtpd", "aiosmtplib", "prometheus_client", "dns", "relay.server", "relay.cli"}
    for argv in (["validate"], ["plan"]):
        modules = loaded_by(*argv, cwd=tmp_path)
        assert {m for m in modules if m.split(".")[0] in heavy or m in heavy} == set(), argv
    assert "jsonschema" not in loaded_by("validate", cwd=tmp_path)  # only invalid files need it


def test_importing_the_relay_changes_no_global_logging_or_warnings() -> None:
    code = (
        "import logging, warnings\nbefore = list(warnings.filters)\n"
        "import relay.server, relay.handler, relay.smtp\n"
        "assert logging.getLogger('mail.log').level == logging.NOTSET\n"
        "assert not logging.getLogger('mail.log').filters\n"
        "assert warnings.filters == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_no_function_is_longer_than_60_lines() -> None:
    long = []
    for package in ("reconciler", "relay"):
        for path in python_files(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        long.append(
                            f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})"
                        )
    assert long == []


def test_a_module_over_300_lines_says_why_in_its_docstring() -> None:
    unexplained = []
    for package in ("reconciler", "relay"):
        for path in python_files(package):
            text = path.read_text()
            doc = ast.get_docstring(ast.parse(text)) or ""
            if len(text.splitlines()) > MAX_MODULE_LINES and "longer than" not in doc:
                unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []
