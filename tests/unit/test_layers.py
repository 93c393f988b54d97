"""The layering import-linter cannot check: its contracts hold packages, not the two
top-level modules. `settings.py` sits just above `domain/` (ARCHITECTURE.md)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OURS = frozenset(
    {
        "server",
        "web",
        "schema",
        "resolvers",
        "loaders",
        "backends",
        "settings",
        "domain",
        "observability",
        "local_personalize",
        "federation",
        "bench",
        "tests",
    }
)


def _project_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in OURS)
    return found


def test_settings_imports_only_domain() -> None:
    assert _project_imports(REPO / "settings.py") <= {"domain"}


def test_no_package_imports_server() -> None:
    """server.py wires everything; nothing but tests and benchmarks may depend on it."""
    offenders = [
        str(path.relative_to(REPO))
        for package in ("web", "schema", "resolvers", "loaders", "backends", "domain")
        for path in (REPO / package).rglob("*.py")
        if "server" in _project_imports(path)
    ]
    offenders += [name for name in ("settings.py",) if "server" in _project_imports(REPO / name)]
    assert offenders == []


def test_the_check_sees_imports() -> None:
    """The walk finds project imports where they are (so the tests above can fail)."""
    assert "domain" in _project_imports(REPO / "settings.py")
    assert "settings" in _project_imports(REPO / "server.py")
