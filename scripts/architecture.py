"""Draw the package diagram of docs/architecture.md from the code's imports.

    python scripts/architecture.py          # rewrite the diagram between the markers
    python scripts/architecture.py --check  # exit 1 when the doc's diagram is out of date

Each arrow is "imports"; an arrow implied by two others (a -> b -> c makes a -> c) is left out, so
the picture shows the stages in the order data flows through them.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- diagram:begin (scripts/architecture.py) -->", "<!-- diagram:end -->"
PACKAGES = ["experiment", "evaluation", "analysis", "precompute", "server", "ui", "pages", "app", "toolkit", "demos"]


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "cnc" and parts[1] in PACKAGES else None


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for path in (ROOT / "cnc").rglob("*.py"):
        src = package_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if src is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                dst = package_of(name)
                if dst and dst != src:
                    edges[src].add(dst)
    return edges


def reduced(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop a -> c when c is reachable from a through another package."""
    def reach(a: str, skip: str) -> set[str]:
        seen, todo = set(), [b for b in edges[a] if b != skip]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(edges[n])
        return seen
    return {a: {c for c in cs if c not in reach(a, c)} for a, cs in edges.items()}


def mermaid() -> str:
    lines = ["```mermaid", "flowchart BT"]
    for a, cs in sorted(reduced(package_graph()).items()):
        lines += [f"  {a} --> {c}" for c in sorted(cs)]
    return "\n".join(lines + ["```"])


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run python scripts/architecture.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
