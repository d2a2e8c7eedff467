"""The import structure is a gate: no module imports another that imports it back (also
through function-local imports, which can hide a circle until the wrong call runs), and
each package imports only the floors below it:

    tools' front-ends (the CLI, the demo)  ->  anything
    simulator                              ->  tools' library parts, cloud, firmware, sdk
    tools' library parts                   ->  cloud, firmware, sdk
    cloud                                  ->  sdk
    firmware                               ->  sdk
    sdk                                    ->  nothing of ours

and nothing but a front-end imports a front-end.

`python tests/test_import_layers.py` prints every edge that breaks a rule.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"soundbox": "sdk", "soundbox_fw": "firmware", "soundbox_cloud": "cloud",
            "soundbox_tools": "tools", "soundbox_sim": "simulator"}
MAY_IMPORT = {
    "soundbox": set(),
    "soundbox_fw": {"soundbox"},
    "soundbox_cloud": {"soundbox"},
    "soundbox_tools": {"soundbox", "soundbox_fw", "soundbox_cloud"},
    "soundbox_sim": {"soundbox", "soundbox_fw", "soundbox_cloud", "soundbox_tools"},
}
# The tools' command-line front-ends: the top floor, which may import every floor and
# which only another front-end imports.
FRONT_ENDS = {"soundbox_tools.cli", "soundbox_tools.demo", "soundbox_tools.device", "soundbox_tools.devicerun",
              "soundbox_tools.otacli", "soundbox_tools.otacampaign", "soundbox_tools.pkicli"}


def modules():
    """{dotted module name: path} of every module in our five packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder / package).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path, name, known):
    """The modules of ours that `path` imports, at any depth of its code."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                base = ".".join(up[:len(up) - node.level + 1] + ([base] if base else []))
            # `from package import module` names a module; `from module import name` does not
            targets = [base + "." + alias.name if base + "." + alias.name in known else base
                       for alias in node.names]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def graph():
    known = modules()
    return {name: imports(path, name, known) for name, path in known.items()}


def cycles(edges):
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def layer_breaks(edges):
    """(importer, imported) pairs that go sideways or up."""
    bad = []
    for src, targets in sorted(edges.items()):
        if src in FRONT_ENDS:
            continue
        src_package = src.partition(".")[0]
        for dst in sorted(targets):
            dst_package = dst.partition(".")[0]
            if dst in FRONT_ENDS or (dst_package != src_package and dst_package not in MAY_IMPORT[src_package]):
                bad.append((src, dst))
    return bad


def test_no_module_imports_itself_back():
    assert cycles(graph()) == []


def test_each_package_imports_only_the_floors_below():
    assert layer_breaks(graph()) == []


def test_the_checker_sees_a_circle_and_a_broken_floor():
    edges = {"soundbox.a": {"soundbox.b"}, "soundbox.b": {"soundbox.a"}, "soundbox_cloud.c": {"soundbox_sim.d"},
             "soundbox_sim.d": {"soundbox_tools.cli"}, "soundbox_tools.cli": {"soundbox_sim.d"}}
    assert cycles(edges) == [["soundbox.a", "soundbox.b"], ["soundbox_sim.d", "soundbox_tools.cli"]]
    assert layer_breaks(edges) == [("soundbox_cloud.c", "soundbox_sim.d"), ("soundbox_sim.d", "soundbox_tools.cli")]


def test_the_graph_reads_our_imports():
    edges = graph()
    assert "soundbox.mqttcodec" in edges["soundbox.mqttsession"]
    assert "soundbox_cloud.mqttlink" in edges["soundbox_cloud.cloud"]


if __name__ == "__main__":
    g = graph()
    for group in cycles(g):
        print("circle:", " <-> ".join(group))
    for src, dst in layer_breaks(g):
        print("layer: %s imports %s" % (src, dst))
