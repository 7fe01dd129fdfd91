"""What may import what (docs: the layers), checked on the code rather than trusted.

- The layers contract of pyproject.toml's ``[tool.importlinter]`` (import-linter): config -> core ->
  store -> operations | wiring -> protocols -> server -> cli, each importing only the ones before it.
- No import cycles anywhere in totpadmin, between modules of one package included, TYPE_CHECKING
  imports counted: a cycle makes the order of imports matter and the modules impossible to read apart.
- Management commands import neither Twisted nor spyne: they start fast, and work where the server's
  dependencies are broken.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

SERVER_ONLY = ("twisted", "spyne")


def _pyproject() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    raise AssertionError("no pyproject.toml above the tests")


def test_the_import_linter_contracts_hold():
    # In a process of its own: its command line configures logging with dictConfig, which would disable
    # the loggers other tests read with caplog.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), str(_pyproject()), "--no-cache"],
                            cwd=_pyproject().parent, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append((other, iter(sorted(graph.find_modules_directly_imported_by(other)))))
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycles():
    graph = grimp.build_graph("totpadmin", cache_dir=None)  # TYPE_CHECKING imports included
    cycles = _cycles(graph)
    assert not cycles, "modules that import each other (in a circle):\n" + "\n".join(" ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("TOTP_")}


def _server_modules(code: str, *args: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_ONLY!r})))")
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=_env(),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_importing_the_commands_imports_no_server():
    assert _server_modules("from totpadmin.cli.main import main") == []


@pytest.mark.parametrize("command", [("user", "list"), ("client", "list")])
def test_a_management_command_imports_no_server(tmp_path, command):
    modules = _server_modules("from totpadmin.cli.main import main\nassert main(sys.argv[1:]) == 0",
                              *command, "--data-dir", str(tmp_path / "data"))
    assert modules == []


def test_importtime_shows_no_server_module():
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "from totpadmin.cli.main import main"],
                            capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "totpadmin.cli.main" in imported
    assert [name for name in imported if name.split(".")[0] in SERVER_ONLY] == []
