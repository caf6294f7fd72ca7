"""The import graph obeys the layers (issue 16 item 5; docs/architecture.md "Layers").

Every module of ``cryptoki_shim`` and ``conformance`` is parsed with ``ast`` (nothing is
imported) and every import is collected, at module level or inside a function alike: an
import moved into a function to dodge a cycle is still a dependency. Each module belongs to
one layer; an import may go to its own group or to any layer below, never up and never
sideways into another group of the same rank. Separately, no two modules may import each
other, directly or around a circle. The few exceptions are in ``ALLOWED`` with their reason.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cryptoki_shim", "conformance")

#: (rank, group, module prefixes), from the top. A module is in the group of its longest
#: matching prefix. An import from group A to group B is allowed when A == B or B's rank is
#: lower; two groups of one rank (abi and cli: both entry points) may not import each other.
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (9, "conformance", ("conformance",)),            # the conformance runner: a tool over the .so
    (8, "abi", ("cryptoki_shim.abi",)),              # C entry points: read C args, call the core
    (8, "cli", ("cryptoki_shim.cli",)),              # admin entry points: the same core, in Python
    (7, "core", ("cryptoki_shim.core",)),            # module, slots, tokens, sessions, objects, rules
    (6, "backends", ("cryptoki_shim.backends",)),    # where key material lives; implement the contract
    (5, "mechanisms", ("cryptoki_shim.mechanisms",)),  # the families and the contract they define
    (4, "attributes", ("cryptoki_shim.attributes",)),  # codec, tables, the one validator
    (3, "store", ("cryptoki_shim.store",)),          # persistence and at-rest crypto
    (2, "services", ("cryptoki_shim.audit", "cryptoki_shim.config", "cryptoki_shim.config_reference",
                     "cryptoki_shim.diagnostics", "cryptoki_shim.log", "cryptoki_shim.metrics")),
    (1, "base", ("cryptoki_shim", "cryptoki_shim.spec", "cryptoki_shim.spec_ints", "cryptoki_shim.der",
                 "cryptoki_shim.errors", "cryptoki_shim.private_files", "cryptoki_shim.runtime")),
)

#: Imports that break a rule on purpose: (importer, imported) -> why. Keep it short; every
#: entry needs its reason, and an entry that no longer matches an import fails the test.
ALLOWED: dict[tuple[str, str], str] = {
}

#: Who may touch the library we run inside (cffi ``ffi``/``lib``): the ABI layer, and the two
#: mechanism modules that call our own C helpers (native/fastsign.c, native/digest.c).
RUNTIME_USERS = ("cryptoki_shim.abi", "cryptoki_shim.mechanisms.native", "cryptoki_shim.mechanisms.digest")

#: The store's inside: SQL, tables and statement sets are seen by no module outside store/
#: (the one write API is ``Store``'s methods, issue 16 item 4).
STORE_PRIVATE = ("cryptoki_shim.store.schema", "cryptoki_shim.store.sqlite", "cryptoki_shim.store.sqlite_ops",
                 "cryptoki_shim.store.core_ops", "cryptoki_shim.store.failures")
#: Third-party packages only the store may import, and the exceptions (module -> why).
STORE_ONLY_THIRD_PARTY = ("sqlalchemy",)
STORE_ONLY_EXCEPTIONS = {
    "cryptoki_shim.cli.doctor": "make_url parses the configured store URL to name its file in the report; no SQL",
}


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts.pop()
            out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = modules()


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or None


def imports(name: str) -> Iterator[tuple[str, int, str]]:
    """(imported name, line, how) for every import statement of the module, at any depth;
    imported names are absolute (relative ones resolved)."""
    path, is_pkg = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, "import"
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                yield (sub if sub in MODULES else source), node.lineno, "from"


def graph() -> dict[str, dict[str, int]]:
    """importer -> {imported module: first line}, our modules only, self-imports left out."""
    edges: dict[str, dict[str, int]] = defaultdict(dict)
    for name in MODULES:
        for target, line, _ in imports(name):
            known = _known(target)
            if known is not None and known != name:
                edges[name].setdefault(known, line)
    return edges


GRAPH = graph()


def layer(name: str) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None
    for rank, group, prefixes in LAYERS:
        for p in prefixes:
            if name == p or name.startswith(p + "."):
                if best is None or len(p) > best[0]:
                    best = (len(p), rank, group)
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best[1], best[2]


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer(name)
    assert layer("cryptoki_shim.store.store") == (3, "store") and layer("cryptoki_shim") == (1, "base")
    assert layer("cryptoki_shim.config_reference") == (2, "services")


def _where(a: str, b: str) -> str:
    return f"{MODULES[a][0].relative_to(ROOT)}:{GRAPH[a][b]}"


def test_imports_go_down_the_layers() -> None:
    bad = []
    for a, targets in GRAPH.items():
        ra, ga = layer(a)
        for b in targets:
            rb, gb = layer(b)
            if ga == gb or rb < ra or (a, b) in ALLOWED:
                continue
            bad.append(f"{_where(a, b)}: {a} ({ga}) imports {b} ({gb})")
    assert bad == [], "imports against the layers (docs/architecture.md):\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(GRAPH):
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if (v, w) in ALLOWED:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(GRAPH.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles() -> None:
    """Not even inside one layer: a circle means neither module can be read (or loaded) first."""
    cycles = _cycles()
    described = []
    for comp in cycles:
        members = set(comp)
        described.append(" <-> ".join(comp) + ": " + "; ".join(
            f"{_where(a, b)} imports {b}" for a in comp for b in GRAPH[a] if b in members))
    assert cycles == [], "import cycles:\n" + "\n".join(described)


def test_allow_list_entries_are_real_and_explained() -> None:
    for (a, b), why in ALLOWED.items():
        assert b in GRAPH.get(a, {}), f"ALLOWED[{a}, {b}] matches no import any more: remove it"
        assert len(why.split()) >= 4, f"ALLOWED[{a}, {b}] needs its reason"


def test_only_the_abi_and_the_native_helpers_touch_the_library() -> None:
    users = sorted(a for a, targets in GRAPH.items() if "cryptoki_shim.runtime" in targets)
    assert users and all(u.startswith(RUNTIME_USERS) for u in users), users


def test_nothing_outside_the_store_sees_its_sql() -> None:
    bad = [f"{_where(a, b)}: {a} imports {b}" for a, targets in GRAPH.items() if not a.startswith("cryptoki_shim.store")
           for b in targets if b.startswith(STORE_PRIVATE)]
    for name in MODULES:
        if name.startswith("cryptoki_shim.store") or name in STORE_ONLY_EXCEPTIONS:
            continue
        bad += [f"{MODULES[name][0].relative_to(ROOT)}:{line}: {name} imports {target}"
                for target, line, _ in imports(name) if target.split(".")[0] in STORE_ONLY_THIRD_PARTY]
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("source, expected", [
    ("from . import x\n", {"pkg.x"}),
    ("def f():\n    from ..other import y\n", {"other.y"}),
    ("import other.y\n", {"other.y"}),
])
def test_the_parser_sees_every_kind_of_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              source: str, expected: set[str]) -> None:
    """Function-level and relative imports count: the checker itself is tested."""
    for rel in ("pkg/__init__.py", "pkg/x.py", "pkg/mod.py", "other/__init__.py", "other/y.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(source)
    fake = {"pkg": (tmp_path / "pkg/__init__.py", True), "pkg.x": (tmp_path / "pkg/x.py", False),
            "pkg.mod": (tmp_path / "pkg/mod.py", False), "other": (tmp_path / "other/__init__.py", True),
            "other.y": (tmp_path / "other/y.py", False)}
    monkeypatch.setitem(globals(), "MODULES", fake)
    assert {_known(t) for t, _, _ in imports("pkg.mod")} == expected
