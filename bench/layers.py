"""The shape of the code: package edges, cycles between packages, and the longest modules.

``python -m bench layers`` reads this checkout's imports (grimp, the graph import-linter checks) and, with
``RISKGATE_BENCH_BASELINE=<older checkout>``, that checkout's too, side by side: the edges between top-level
packages (and between serving's parts), the groups of packages that import each other (cycles), and the ten
longest modules of the product code. The README's "How it fits together" states the layers these must keep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import grimp

REPOSITORY: Final = Path(__file__).resolve().parent.parent
#: Product packages, those of an older checkout that lack some are skipped.
PACKAGES: Final = (
    "core", "events", "features", "rules", "registry", "recovery", "simulator", "training", "serving",
    "riskgate",
)  # fmt: skip


def run(scratch: Path) -> dict[str, Any]:
    del scratch  # nothing is written
    result = {"after": shape_of(REPOSITORY)}
    baseline = os.environ.get("RISKGATE_BENCH_BASELINE")
    if baseline:
        result["before"] = shape_of(Path(baseline).resolve())
    return result


def shape_of(checkout: Path) -> dict[str, Any]:
    """The package edges, cycles and longest modules of the checkout at ``checkout`` (read in a subprocess,
    so that its packages, not this interpreter's, are imported by name)."""
    script = (
        "import json, sys; from bench.layers import _shape; "  # this module, then the checkout's packages
    )
    script += f"sys.path.insert(0, {str(checkout)!r}); print(json.dumps(_shape({str(checkout)!r})))"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPOSITORY, capture_output=True, text=True, check=True
    )
    shape: dict[str, Any] = json.loads(out.stdout)
    return shape


def _shape(checkout: str) -> dict[str, Any]:
    root = Path(checkout)
    packages = [name for name in PACKAGES if (root / name / "__init__.py").exists()]
    graph = grimp.build_graph(*packages, include_external_packages=False, cache_dir=None)
    edges: set[tuple[str, str]] = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add((_part(root, module), _part(root, imported)))
    top = sorted({(a.split(".")[0], b.split(".")[0]) for a, b in edges if a.split(".")[0] != b.split(".")[0]})
    inside = sorted(
        (a, b) for a, b in edges if a != b and a.startswith("serving.") and b.startswith("serving")
    )
    return {
        "package_edges": len(top),
        "imports": _adjacency(top),
        "cycles": _cycles(top),
        "serving_parts": _adjacency(inside),
        "longest_modules": _longest(root, packages),
    }


def _part(root: Path, module: str) -> str:
    """A module's package, serving's sub-packages told apart (serving.api, serving.store, ...)."""
    parts = module.split(".")
    if parts[0] == "serving" and len(parts) > 2 and (root / "serving" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def _adjacency(edges: list[tuple[str, str]]) -> dict[str, list[str]]:
    imports: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        imports[source].append(target)
    return dict(imports)


def _cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """The groups of packages that import each other, directly or not (strongly connected, Tarjan)."""
    imports = _adjacency(edges)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in imports.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = [stack.pop()]
            while group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted({name for edge in edges for name in edge}):
        if node not in index:
            visit(node)
    return sorted(groups)


def _longest(root: Path, packages: list[str], count: int = 10) -> list[tuple[str, int]]:
    """The ``count`` longest modules of the product packages, as ``(path, lines)``."""
    lengths = [
        (str(path.relative_to(root)), len(path.read_text().splitlines()))
        for package in packages
        for path in (root / package).rglob("*.py")
    ]
    return sorted(lengths, key=lambda item: -item[1])[:count]
