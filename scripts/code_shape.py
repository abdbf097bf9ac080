"""The code-shape checks of the restructuring, printed for a source tree (default: this checkout's src/):

- import cycles among mmib's modules (module-level imports, and with function-level ones);
- functions longer than 60 lines;
- string comparisons on the task (``"ner"``/``"mre"``) or the image source outside ``processing/`` and the
  config that names them (``model/config.py``); the data readers and the synthetic generator name the task of
  a file they read or write, before any model exists, and are counted apart;
- the line counts of ``predict/extractor.py`` and ``cli.py``.

    python scripts/code_shape.py [SRC]      # e.g. a worktree of an earlier commit, for a before/after
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

TASK_OR_IMAGE = re.compile(r"""[!=]=\s*["'](ner|mre|re|pixels|captions)["']|image_source\s*[!=]=""")


def modules(src: Path) -> dict[str, Path]:
    found = {}
    for path in (src / "mmib").rglob("*.py"):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imported(path: Path, known: dict[str, Path], function_level: bool) -> set[str]:
    """The mmib modules a file imports (TYPE_CHECKING blocks left out: they never run)."""
    out: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom) and (top or function_level):
                if isinstance(child, ast.Import):
                    names = [alias.name for alias in child.names]
                else:
                    names = [child.module or "", *(f"{child.module}.{alias.name}" for alias in child.names)]
                for name in names:
                    while name and name not in known:
                        name = name.rpartition(".")[0]
                    if name:
                        out.add(name)
            visit(child, top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(ast.parse(path.read_text()), True)
    return out


def import_cycles(src: Path, function_level: bool = True) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components, Tarjan's algorithm)."""
    known = modules(src)
    graph = {name: _imported(path, known, function_level) - {name} for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            if group:
                cycles.append(sorted([*group, node]))

    for name in graph:
        if name not in index:
            connect(name)
    return cycles


def long_functions(src: Path, limit: int = 60) -> list[tuple[int, str]]:
    rows = []
    for path in (src / "mmib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    rows.append((length, f"{path.relative_to(src)}:{node.lineno} {node.name}"))
    return sorted(rows, reverse=True)


def string_branches(src: Path) -> dict[str, list[str]]:
    """Task and image-source string comparisons: outside processing/ and model/config.py, split into the
    data layer (readers, synthetic generator) and the rest."""
    found: dict[str, list[str]] = {"data layer": [], "elsewhere": []}
    for path in sorted((src / "mmib").rglob("*.py")):
        relative = path.relative_to(src / "mmib").as_posix()
        if relative.startswith("processing/") or relative == "model/config.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if TASK_OR_IMAGE.search(line) and not line.lstrip().startswith("#"):
                where = "data layer" if relative.startswith("data/") else "elsewhere"
                found[where].append(f"{relative}:{number}: {line.strip()}")
    return found


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src"
    for level, label in ((False, "module-level"), (True, "module- and function-level")):
        cycles = import_cycles(src, level)
        print(f"import cycles ({label}): {len(cycles)}")
        for cycle in cycles:
            print("  " + " <-> ".join(cycle))
    rows = long_functions(src)
    print(f"functions over 60 lines: {len(rows)}")
    for length, where in rows:
        print(f"  {length:4d} {where}")
    for where, lines in string_branches(src).items():
        print(f"task / image-source string comparisons ({where}): {len(lines)}")
        for line in lines:
            print("  " + line)
    for name in ("predict/extractor.py", "cli.py"):
        print(f"lines of {name}: {len((src / 'mmib' / name).read_text().splitlines())}")


if __name__ == "__main__":
    main()
