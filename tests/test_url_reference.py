"""docs/urls.md documents every URL key the code reads or writes (and no key the code dropped).

Keys are found in the source, not listed by hand: string literals read from a parsed query
(`query.get("x")`, `query["x"]`, `params.get("x")`), names passed to the URL-reading helpers
(`pick(..., "x")`, `take("x", ...)`, `_int(..., "x")`), and the keys of the dict literals that
`url_params` / `state_params` / `params` functions build. The filter prefix (`f.`) is a family.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from cnc.analysis.filters import PREFIX

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "urls.md"
READERS = {"query", "params"}  # names of parsed query mappings
HELPERS = {"pick": -1, "_int": -1, "take": 0}  # URL-reading helper -> position of the key argument
NOT_VIEWS = {"synthetic.py", "bench", "demos"}  # code that reads operation `params`, not URLs
WRITERS = re.compile(r"(^|_)params$")


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def keys_in(source: str) -> set[str]:
    keys: set[str] = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in READERS and node.args:
            keys.add(_literal(node.args[0]))
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in READERS:
            keys.add(_literal(node.slice))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in HELPERS \
                and len(node.args) > 1:
            keys.add(_literal(node.args[HELPERS[node.func.id]]))
        elif isinstance(node, ast.FunctionDef) and WRITERS.search(node.name):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Dict):
                    keys.update(_literal(k) for k in inner.keys if k is not None)
                elif isinstance(inner, ast.Subscript) and isinstance(inner.ctx, ast.Store):
                    keys.add(_literal(inner.slice))
    return {k for k in keys if k}


def code_keys() -> set[str]:
    keys = set()
    for path in (ROOT / "cnc").rglob("*.py"):
        if NOT_VIEWS & set(path.relative_to(ROOT / "cnc").parts):
            continue
        keys |= keys_in(path.read_text(encoding="utf-8"))
    return keys | {PREFIX + "<metric>"}


def documented_keys() -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_finder_sees_reads_helpers_and_writers():
    src = '''
def state_from_query(query):
    a = query.get("alpha"); b = query["beta"]; c = pick(query.get("gamma"), (), None, [], "gamma")
    take("delta", (), None)
def url_params(state):
    out = {"epsilon": 1}
    out["zeta"] = 2
    return out
'''
    assert keys_in(src) == {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}


def test_every_url_key_is_documented():
    found, documented = code_keys(), documented_keys()
    assert {"sel", "bmetric", "lopen", "svars", "view", "f.<metric>"} <= found  # the finder works
    missing = sorted(found - documented)
    assert not missing, f"URL keys missing from docs/urls.md (add a row for each): {missing}"
    stale = sorted(documented - found)
    assert not stale, f"docs/urls.md documents keys the code no longer uses: {stale}"
