#!/usr/bin/python3
"""Checks the layer graph the build declares (build/layers/graph.json, written by
cmake/WarpLayer.cmake) against the sources, and proves the build enforces it.

  scripts/check_layers.py BUILD_DIR SOURCE_DIR

1. The graph has no cycle.
2. Every `#include "a/b.hpp"` in a layer's folders names a header of the same layer or of
   a layer it depends on (transitively); no include climbs with "..".
3. The compiler agrees: a translation unit compiled with a low layer's flags that includes
   a header of a higher layer fails, and the same unit including its own layer's header
   compiles (so the failure is the include, not the flags).

Exit 0 when all hold; otherwise every violation is printed and the exit code is 1.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def load_graph(build):
    with open(os.path.join(build, "layers", "graph.json")) as f:
        layers = json.load(f)["layers"]
    return {l["name"]: l for l in layers}


def find_cycle(graph):
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for dep in graph[name]["deps"]:
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[name] = "done"
        return None

    for name in graph:
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


def closure(graph, name):
    seen, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(graph[n]["deps"])
    return seen


def owner_of(folder_owner, public_owner, src, header):
    if header.startswith("warp/"):
        for public, name in public_owner.items():
            if os.path.exists(os.path.join(src, public, header)):
                return name
        return None
    return folder_owner.get(os.path.dirname(header))


def check_includes(graph, src):
    folder_owner = {f: name for name, l in graph.items() for f in l["folders"]}
    public_owner = {l["public"]: name for name, l in graph.items() if l.get("public")}
    problems = []
    for name, layer in graph.items():
        allowed = closure(graph, name)
        for folder in layer["folders"]:
            path = os.path.join(src, folder)
            files = [os.path.join(folder, e) for e in sorted(os.listdir(path))]
            if layer.get("public"):
                pub = os.path.join(layer["public"], "warp")
                files += [os.path.join(pub, e) for e in sorted(os.listdir(os.path.join(src, pub)))]
            for file in files:
                entry = os.path.basename(file)
                if not entry.endswith((".cpp", ".hpp")):
                    continue
                with open(os.path.join(src, file), errors="replace") as f:
                    text = f.read()
                for inc in INCLUDE.findall(text):
                    if ".." in inc.split("/"):
                        problems.append(f"{file}: #include \"{inc}\" climbs out of its folder")
                        continue
                    if "/" not in inc:
                        # Same folder, found next to the including file.
                        if not os.path.exists(os.path.join(src, os.path.dirname(file), inc)):
                            problems.append(f"{file}: #include \"{inc}\" is not next to it")
                        continue
                    target = owner_of(folder_owner, public_owner, src, inc)
                    if target is None:
                        problems.append(f"{file}: #include \"{inc}\" names no layer's header")
                    elif target not in allowed:
                        problems.append(
                            f"{file} ({name}): #include \"{inc}\" points to {target}, "
                            f"which {name} does not depend on")
    return problems


def compile_flags(build, source):
    with open(os.path.join(build, "compile_commands.json")) as f:
        for entry in json.load(f):
            if entry["file"].endswith(source):
                args = shlex.split(entry["command"])
                out = []
                skip = False
                for a in args[1:]:
                    if skip:
                        skip = False
                        continue
                    if a in ("-o", "-c"):
                        skip = a == "-o"
                        continue
                    if a.endswith(source) or a.startswith("-include") or "cmake_pch" in a:
                        continue
                    out.append(a)
                # the compiler itself (skip a ccache launcher)
                compiler = args[0]
                if os.path.basename(compiler) == "ccache":
                    compiler, out = out[0], out[1:]
                return compiler, entry["directory"], out
    return None


def compiles(build, source, include):
    found = compile_flags(build, source)
    if not found:
        raise SystemExit(f"no compile command for {source} in {build}/compile_commands.json")
    compiler, directory, flags = found
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as tu:
        tu.write(f'#include "{include}"\nint main() {{ return 0; }}\n')
    try:
        r = subprocess.run([compiler, *flags, "-fsyntax-only", tu.name], cwd=directory,
                           capture_output=True, text=True)
        return r.returncode == 0, r.stderr
    finally:
        os.unlink(tu.name)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    build, src = sys.argv[1], sys.argv[2]
    graph = load_graph(build)
    problems = []
    cycle = find_cycle(graph)
    if cycle:
        problems.append("layer cycle: " + " -> ".join(cycle))
    problems += check_includes(graph, src)

    # The build enforces it: L1 (low) cannot see the node's internals (high), but sees its
    # own layer and the core below it.
    probes = [
        ("runtime/l1/l1_store.cpp", "runtime/node/node_impl.hpp", False),
        ("runtime/l1/l1_store.cpp", "bus/envelope.hpp", False),
        ("bus/envelope.cpp", "actors/cluster_actor.hpp", False),
        ("runtime/l1/l1_store.cpp", "runtime/core/epoch.hpp", True),
        ("actors/control_actor.cpp", "warp/node.hpp", False),
        ("actors/control_actor.cpp", "runtime/node/node_impl.hpp", False),
        ("actors/control_actor.cpp", "bus/envelope.hpp", True),
        ("bus/envelope.cpp", "bus/envelope.hpp", True),
        # The modes sit below the node facade: its header and its state are out of reach.
        ("runtime/modes/write_path.cpp", "warp/node.hpp", False),
        ("runtime/modes/write_path.cpp", "runtime/node/node_impl.hpp", False),
        ("runtime/modes/write_path.cpp", "actors/quorum_actor.hpp", True),
        # Federation sits between the modes and the node facade.
        ("federation/federation_actor.cpp", "warp/node.hpp", False),
        ("federation/federation_actor.cpp", "runtime/modes/write_path.hpp", True),
        ("runtime/modes/write_path.cpp", "federation/federation_actor.hpp", False),
    ]
    for source, include, expect in probes:
        ok, err = compiles(build, source, include)
        if ok != expect:
            want = "compile" if expect else "fail to compile"
            problems.append(f"with the flags of {source}, #include \"{include}\" should {want}"
                            + (f":\n{err}" if expect else ""))
    for p in problems:
        print(p)
    print(f"{len(graph)} layers, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
