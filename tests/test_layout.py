"""The code's shape holds: which package may import which, no import cycles, and every command answers --help.

The rules (docs/development.md): `training` is a library (no click, no Flask, nothing from `app` or `chatbot`);
`app` is the web service (nothing from `chatbot`); `chatbot` is the command line, the only package that imports both.
Imports are read from the source with `ast`, those inside functions included: a cycle hidden in a function is still a
cycle for the person reading the code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatbot.cli import main

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("training", "app", "chatbot")
FORBIDDEN = {
    "training": {"app", "chatbot", "click", "flask", "werkzeug", "gunicorn"},
    "app": {"chatbot", "click"},
    "chatbot": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str) -> list[tuple[str, list[str]]]:
    """Each import statement of `source` as (module named, [names it imports from it, as dotted paths]); relative
    imports resolved against `module`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found.append((base, [f"{base}.{alias.name}" for alias in node.names]))
    return found


def project_graph(modules: dict[str, str]) -> dict[str, set[str]]:
    """module -> the project modules it imports, from {module name: source}. `from training import text` is an edge
    to training.text; `from training.text import tokenize` one to training.text."""
    graph = {}
    for name, source in modules.items():
        edges = set()
        for base, names in imports_of(source, name):
            submodules = [n for n in names if n in modules]
            edges.update(submodules or ([base] if base in modules else []))
        graph[name] = edges - {name}
    return graph


def rule_breaks(modules: dict[str, str]) -> list[str]:
    breaks = []
    for name, source in modules.items():
        package = name.split(".")[0]
        for base, _ in imports_of(source, name):
            if base.split(".")[0] in FORBIDDEN.get(package, set()):
                breaks.append(f"{name} imports {base}")
    return breaks


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph`, each as the path that closes it (depth-first search, one per back edge)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def project_modules() -> dict[str, str]:
    return {
        module_name(path): path.read_text(encoding="utf-8")
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def test_the_checks_catch_a_cycle_and_a_forbidden_import():
    fake = {
        "training": "",
        "training.a": "from training import b\n",
        "training.b": "def f():\n    import training.a\n",
        "training.c": "import click\nfrom app.model_store import current_store\n",
        "app": "",
        "app.model_store": "from . import routes\n",
        "app.routes": "from training.a import x\n",
    }
    assert cycles(project_graph(fake)) == [["training.a", "training.b", "training.a"]]
    assert rule_breaks(fake) == ["training.c imports click", "training.c imports app.model_store"]
    assert project_graph(fake)["app.model_store"] == {"app.routes"}  # relative imports resolved


def test_training_is_a_library_and_app_never_imports_the_command_line():
    assert rule_breaks(project_modules()) == []


def test_no_import_cycles():
    modules = project_modules()
    assert len(modules) > 40
    assert cycles(project_graph(modules)) == []


def test_every_command_answers_help_under_its_own_name():
    runner = CliRunner()
    assert set(main.commands) == {
        "train",
        "predict",
        "chat",
        "validate",
        "import-csv",
        "evaluate",
        "cross-validate",
        "review",
        "serve",
        "publish",
        "rollback",
        "models",
        "house-prices",
    }
    for name in main.commands:
        result = runner.invoke(main, [name, "--help"], prog_name="chatbot")
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"Usage: chatbot {name} [OPTIONS]"), result.output


def test_python_dash_m_chatbot_is_the_chatbot_script():
    script = Path(sys.executable).parent / "chatbot"
    if not script.exists():
        pytest.skip("the chatbot script is not installed beside this Python")
    by_module = subprocess.run([sys.executable, "-m", "chatbot", "--help"], capture_output=True, text=True, check=True)
    by_script = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert by_module.stdout == by_script.stdout
    assert "serve" in by_module.stdout and "train" in by_module.stdout


def test_help_loads_no_heavy_library():
    """`chatbot --help` and `chatbot train --help` answer without importing torch, nltk, scikit-learn or Flask."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from chatbot.cli import main\n"
        "for args in (['--help'], ['train', '--help'], ['serve', '--help']):\n"
        "    assert CliRunner().invoke(main, args).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'nltk', 'sklearn', 'flask', 'gunicorn') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"
