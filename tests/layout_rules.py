"""The import rules of lutnb's layout, read from the source with `ast` (function-level imports included).

`check(root)` returns a list of violations (empty when the layout is clean) for the package folder `root`:
1. no import cycle between modules (a package's __init__ counts as a module; importing `a.b.c` also runs
   the __init__ of `a.b`, so that edge is counted too, except into the importer's own packages);
2. the stage rules below (which package may import which);
3. no `from module import _private` across modules, and no `obj._private` attribute use of a private name
   that another lutnb module defines (a method, attribute or field with one leading underscore).
Run `python tests/layout_rules.py` to print the graph's summary and any violations.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

# package (first component below lutnb) -> packages it must not import. "base" modules (files, runtime,
# compat and lutnb/__init__) sit under everything.
STAGES = ("kernels", "vq", "boosting", "deploy", "hw", "codesign", "zoo", "experiments", "nb")
FORBIDDEN = {
    "base": set(STAGES),
    "kernels": set(STAGES) - {"kernels"},
    "vq": set(STAGES) - {"kernels", "vq"},                                  # vq imports nothing above it
    "boosting": {"deploy", "hw", "codesign", "zoo", "experiments", "nb"},   # never the experiment world
    "deploy": {"boosting", "hw", "codesign", "zoo", "experiments", "nb"},
    "hw": {"boosting", "codesign", "zoo", "experiments", "nb"},             # workloads and tables, no training
    "codesign": {"boosting", "experiments", "nb"},                          # accuracy through declared records
    "zoo": {"kernels", "vq", "boosting", "deploy", "hw", "codesign", "experiments", "nb"},
    "experiments": {"nb"},
    "nb": set(),
}
BASE = {"files", "runtime", "compat", ""}
# kernels know arrays only: not even the base modules that know files and models
KERNELS_MAY_NOT = {"files", "runtime"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([root.name, *parts])


def stage_of(mod: str) -> str:
    parts = mod.split(".")
    first = parts[1] if len(parts) > 1 else ""
    return "base" if first in BASE else first


def _resolve(importer: str, is_pkg: bool, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    pkg = importer.split(".") if is_pkg else importer.split(".")[:-1]
    base = pkg[: len(pkg) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(root: Path) -> dict:
    """{module: [(target module, imported name or None, line)]} for every lutnb-internal import."""
    modules = {module_name(root, p): p for p in root.rglob("*.py")}
    out = {}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        found = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == root.name:
                        found.append((a.name, None, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, is_pkg, node)
                if not target or target.split(".")[0] != root.name:
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    found.append((sub, None, node.lineno) if sub in modules else (target, a.name, node.lineno))
        out[mod] = found
    return out


def graph(root: Path) -> dict:
    """{module: set of modules whose code runs when it is imported}, own packages' __init__ excluded."""
    modules = {module_name(root, p) for p in root.rglob("*.py")}
    g = {}
    for mod, found in imports(root).items():
        own = {".".join(mod.split(".")[:i]) for i in range(1, len(mod.split(".")) + 1)}
        edges = set()
        for target, _, _ in found:
            parts = target.split(".")
            for i in range(2, len(parts) + 1):  # the target and every package __init__ on its way
                t = ".".join(parts[:i])
                if t in modules and t not in own:
                    edges.add(t)
        g[mod] = edges
    return g


def cycles(g: dict) -> list:
    """Every elementary cycle found by depth-first search, as a list of module paths (one per cycle root)."""
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    return found


def private_definitions(tree: ast.AST) -> set:
    """Single-underscore names a module defines: functions, classes, methods, fields, self._x attributes."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
        elif isinstance(node, ast.Assign):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
    return {n for n in out if n.startswith("_") and not n.startswith("__")}


def private_attribute_uses(root: Path) -> list:
    """`obj._name` where `_name` is private to another lutnb module (self and cls excepted)."""
    trees = {module_name(root, p): ast.parse(p.read_text(), str(p)) for p in root.rglob("*.py")}
    defined = {m: private_definitions(t) for m, t in trees.items()}
    problems = []
    for mod, tree in trees.items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                    and node.attr not in defined[mod]):
                owners = sorted(m for m, names in defined.items() if node.attr in names and m != mod)
                if owners:
                    problems.append(f"{mod}:{node.lineno} uses {node.attr}, private to {', '.join(owners)}")
    return problems


def check(root: Path) -> list:
    root = Path(root)
    problems = [f"import cycle: {' -> '.join(c)}" for c in cycles(graph(root))]
    for mod, found in imports(root).items():
        src = stage_of(mod)
        for target, name, line in found:
            dst = stage_of(target)
            if dst in FORBIDDEN.get(src, set()):
                problems.append(f"{mod}:{line} imports {target}: `{src}` must not import `{dst}`")
            elif src == "kernels" and target.split(".")[1:2] and target.split(".")[1] in KERNELS_MAY_NOT:
                problems.append(f"{mod}:{line} imports {target}: `kernels` must not import files or runtime")
            if name and name.startswith("_") and not name.startswith("__") and target != mod:
                problems.append(f"{mod}:{line} imports the private name {name} from {target}")
    return problems + private_attribute_uses(root)


def private_uses_in_tests(tests: Path, package: str = "lutnb") -> list:
    """`from lutnb... import _x` or `module._x` on an imported lutnb module, in the test files."""
    problems = []
    for path in sorted(tests.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == package:
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        problems.append(f"{path.name}:{node.lineno} imports the private name {a.name}")
                    aliases.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == package:
                        aliases.add(a.asname or a.name.split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                problems.append(f"{path.name}:{node.lineno} uses the private name {node.value.id}.{node.attr}")
    return problems


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent / "lutnb"
    g = graph(root)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} import edges")
    issues = check(root) + private_uses_in_tests(root.parent / "tests")
    print("\n".join(issues) if issues else "no cycles, no forbidden imports, no private names across modules")
    sys.exit(1 if issues else 0)
