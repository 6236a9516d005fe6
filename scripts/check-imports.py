#!/usr/bin/env python3
"""Fails when the modules of engine/src, app/src/page or app/src/worker import each other in a
circle. Reads the `use` graph: one node per source file; an edge A -> B when A names an item
defined in B (by a `use` or a path in its code: `crate::…`, `super::…`, `self::…`, or a child
module's name). Re-exports (`pub use x::Y` in a parent) are followed to the file that defines
the item, and are not edges themselves, nor are `mod x;` declarations. A cycle is a strongly
connected component of more than one file; each is printed with its edges.

Usage: scripts/check-imports.py [ROOT]   (ROOT: the repository, default: this script's parent)
"""

import os
import re
import sys

# (crate root file, the part of the crate that must be free of cycles)
CHECKS = [
    ("engine/src/lib.rs", "engine/src"),
    ("app/src/lib.rs", "app/src/page"),
    ("app/src/lib.rs", "app/src/worker"),
]

STRING = re.compile(r'r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'', re.S)
LINE_COMMENT = re.compile(r"//[^\n]*")
BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)
USE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
PATH = re.compile(r"\b(crate|super|self|[a-z_][a-z0-9_]*)((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")


INLINE_MOD = re.compile(r"\bmod\s+[a-z_][a-z0-9_]*\s*\{")


def strip(src):
    """The source without string literals and comments (so paths inside them are not read), and
    with the paths inside inline modules (`mod tests { … }`) made relative to the file's own
    module: their `super::` is the file itself."""
    src = STRING.sub('""', src)
    src = BLOCK_COMMENT.sub(" ", src)
    src = LINE_COMMENT.sub("", src)
    out, at = [], 0
    for m in INLINE_MOD.finditer(src):
        if m.start() < at:
            continue
        depth, end = 0, m.end() - 1
        for i in range(m.end() - 1, len(src)):
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            if depth == 0:
                end = i
                break
        body = re.sub(r"\bsuper::", "self::", src[m.end() : end])
        out.append(src[at : m.end()] + body)
        at = end
    out.append(src[at:])
    return "".join(out)


def expand(tree):
    """'a::{b, c::{d, e as f}}' -> [['a','b'], ['a','c','d'], ['a','c','e']]."""
    # `x as y` becomes `x@y` before spaces go, so a name containing "as" (`fast`) stays whole.
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def go(s, prefix):
        brace = s.find("{")
        if brace == -1:
            s = s.split("@")[0]
            segs = [x for x in s.split("::") if x]
            if segs and segs[-1] == "self":
                segs = segs[:-1]
            return [prefix + segs]
        head = [x for x in s[:brace].split("::") if x]
        inner = s[brace + 1 : s.rfind("}")]
        out = []
        for part in split_top(inner):
            out += go(part, prefix + head)
        return out

    return go(tree, [])


class Module:
    def __init__(self, path, parent):
        self.path = path
        self.parent = parent
        self.children = {}
        self.src = strip(open(path, encoding="utf-8").read())
        self.reexports = {}  # name -> path segments (relative to this module)

    def dir(self):
        base = os.path.dirname(self.path)
        name = os.path.basename(self.path)
        if name in ("mod.rs", "lib.rs", "main.rs"):
            return base
        return os.path.join(base, name[:-3])


def load(root_file):
    """The module tree under a crate root."""
    root = Module(root_file, None)
    stack = [root]
    while stack:
        m = stack.pop()
        for name in MOD_DECL.findall(m.src):
            for cand in (os.path.join(m.dir(), name + ".rs"), os.path.join(m.dir(), name, "mod.rs")):
                if os.path.exists(cand):
                    child = Module(cand, m)
                    m.children[name] = child
                    stack.append(child)
                    break
        for vis, tree in USE.findall(m.src):
            if vis:
                for segs in expand(tree):
                    if segs:
                        m.reexports[segs[-1]] = segs
    return root


def start(m, first, root):
    """The module a path's first segment names from module m, or None (another crate, a type)."""
    if first == "crate":
        return root
    if first == "super":
        return m.parent
    if first == "self":
        return m
    return None


def resolve(m, segs, root, depth=0):
    """The file defining the item `segs` names from module m (following re-exports)."""
    if not segs or depth > 20:
        return None
    first, rest = segs[0], segs[1:]
    cur = start(m, first, root)
    if cur is None:
        if first in m.children:
            cur, rest = m.children[first], rest
        else:
            return None
    while rest and rest[0] == "super" and cur.parent:
        cur, rest = cur.parent, rest[1:]
    while rest and rest[0] in cur.children:
        cur, rest = cur.children[rest[0]], rest[1:]
    if rest and rest[0] in cur.reexports and cur.reexports[rest[0]] != [rest[0]]:
        target = resolve(cur, cur.reexports[rest[0]], root, depth + 1)
        if target is not None:
            return target
    return cur


def edges(root):
    """{file: {file: [how it is named]}} over the crate."""
    out = {}
    todo = [root]
    while todo:
        m = todo.pop()
        todo += m.children.values()
        named = set()
        for vis, tree in USE.findall(m.src):
            if not vis:
                named.update(tuple(s) for s in expand(tree) if s)
        body = USE.sub("", m.src)
        for first, rest in PATH.findall(body):
            segs = [first] + [x for x in re.split(r"\s*::\s*", rest) if x]
            if first in ("crate", "super", "self") or first in m.children:
                named.add(tuple(segs))
        for segs in named:
            target = resolve(m, list(segs), root)
            if target is not None and target.path != m.path:
                out.setdefault(m.path, {}).setdefault(target.path, []).append("::".join(segs))
    return out


def cycles(graph, nodes):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in nodes:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(repo)
    failed = False
    graphs = {}
    for root_file, part in CHECKS:
        if root_file not in graphs:
            graphs[root_file] = edges(load(root_file))
        graph = graphs[root_file]
        nodes = {p for p in set(graph) | {t for ts in graph.values() for t in ts} if p.startswith(part + "/")}
        found = cycles(graph, nodes)
        print(f"{part}: {len(nodes)} files, {sum(len(graph.get(n, {})) for n in nodes)} imports, {len(found)} cycles")
        for comp in found:
            failed = True
            print("  cycle: " + " <-> ".join(comp))
            for a in comp:
                for b, how in sorted(graph.get(a, {}).items()):
                    if b in comp:
                        print(f"    {a} -> {b}  ({', '.join(sorted(set(how))[:3])})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
