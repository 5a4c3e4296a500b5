#!/usr/bin/env python3
"""The layer rule of the shared crate, checked: which module may import which.

Reads every `shared/src/**/*.rs`, maps each file to its module path (`sync/copy.rs` is
`sync::copy`, `x/mod.rs` is `x`), collects the crate paths its production code names (`use`
trees and paths in code: `crate::`, `super::`, `self::`, a child module's name, and any module
bound by a `use`, such as `oss` after `use crate::oss;`), classifies both ends into the layers of
`LAYERS` by longest matching prefix, and prints one line per import that goes against the rule:

    shared/src/sync/x.rs:3: sync::x (L2 core) imports aws::s3_source (L3 adapter): ...

It also fails on an import cycle between second-level modules (`aws::sqs` -> `aws::sqs_poll` ->
`aws::sqs`), and when the table in docs/ARCHITECTURE.md is not the table below.

Test code is left out: `tests.rs` files, files under a `tests` directory, modules declared
`#[cfg(test)] mod name;`, and every item after a `#[cfg(test)]` attribute (most often the
`mod tests { ... }` block). Comments and string literals are never read as code.

Exit status: 0 with a one-line summary when the tree keeps the rule, 1 with the violations.
Python 3 standard library only; `--self-test` runs scripts/test_check_architecture.py.
"""

import argparse
import bisect
import re
import subprocess
import sys
from pathlib import Path

# The layers, lowest first: (layer, name, module prefixes). A module is in the layer of the longest
# prefix it matches (`oss::error` is L0, `oss::client` is L3) and may import its own layer and the
# ones below it. docs/ARCHITECTURE.md carries the same table (`--print-table` renders it; the
# check fails when the two differ).
LAYERS = (
    (0, "foundation", ("retry", "checksum", "budget", "errors",
                       "oss::error", "oss::signing", "oss::endpoint",
                       "oss::limits")),
    (1, "domain", ("event", "task", "outcome", "store", "telemetry")),
    (2, "core", ("sync", "report", "verify")),
    (3, "adapter", ("aws", "oss", "report::stores", "report::watch", "verify::stores")),
    (4, "wiring", ("config", "setup", "sweep", "control", "testing")),
)

# Modules only their own subtree may import, whatever the layers say.
FEATURE_GATED = {"control": "only control itself may import it (it is built only with the "
                            "`control` feature)"}
TEST_ONLY = {"testing": "only test code and testing itself may import it (it is built only for "
                        "tests and with `test-util`)"}

SOURCE_DIR = Path("shared") / "src"
DOC = Path("docs") / "ARCHITECTURE.md"
TABLE_BEGIN = "<!-- layers: begin (scripts/check_architecture.py --print-table) -->"
TABLE_END = "<!-- layers: end -->"

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def layer_of(module):
    """(layer, name) of a module path by its longest matching prefix, or None."""
    best, best_len = None, -1
    parts = module.split("::")
    for layer, name, prefixes in LAYERS:
        for prefix in prefixes:
            p = prefix.split("::")
            if parts[: len(p)] == p and len(p) > best_len:
                best, best_len = (layer, name), len(p)
    return best


def label(module):
    found = layer_of(module)
    return f"L{found[0]} {found[1]}" if found else "no layer"


def under(module, root):
    return module == root or module.startswith(root + "::")


def render_table():
    """The layer table as docs/ARCHITECTURE.md shows it."""
    lines = ["| layer | modules | may import |", "| --- | --- | --- |"]
    for layer, name, prefixes in LAYERS:
        mods = ", ".join(f"`{p}`" for p in prefixes)
        may = "L0" if layer == 0 else f"L0 to L{layer}"
        if layer == LAYERS[-1][0]:
            may = "anything"
        lines.append(f"| L{layer} {name} | {mods} | {may} |")
    for mod, why in list(FEATURE_GATED.items()) + list(TEST_ONLY.items()):
        lines.append(f"| any | `{mod}` | {why} |")
    return "\n".join(lines)


# Reading Rust: comments and literals blanked, test items removed, line numbers kept.


RAW_STRING = re.compile(r"b?r(#*)\"")
INTERESTING = re.compile(r"/[/*]|[\"']|(?<![A-Za-z0-9_])b?r#*\"")
NOT_NEWLINE = re.compile(r"[^\n]")
BRACKET = re.compile(r"[()\[\]{};]")


def blank_comments_and_literals(text):
    """`text` with comments and the insides of string and char literals replaced by spaces
    (newlines kept, so offsets and line numbers stay those of the file)."""
    out = list(text)
    n = len(text)
    i = 0

    def blank(a, b):
        out[a:b] = NOT_NEWLINE.sub(" ", text[a:b])

    def literal(start, j, quote):
        """Blanks the literal opened at text[start], its body read on from text[j] to the closing
        `quote` (escapes skipped); the index after that quote."""
        while j < n and text[j] != quote:
            j += 2 if text[j] == "\\" else 1
        blank(start + 1, min(j, n))
        return j + 1

    while i < n:
        found = INTERESTING.search(text, i)
        if not found:
            break
        i = found.start()
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = RAW_STRING.match(text, i)
            if m:
                hashes = m.group(1)
                end = text.find('"' + hashes, m.end())
                end = n if end < 0 else end + 1 + len(hashes)
                blank(m.end(), end - 1 - len(hashes))
                i = end
            else:
                i += 1
        elif c == '"':
            i = literal(i, i + 1, '"')
        elif c == "'":
            if nxt == "\\":
                i = literal(i, i + 2, "'")
            elif i + 2 < n and text[i + 2] == "'" and nxt != "\n":
                blank(i + 1, i + 2)
                i += 3
            else:
                i += 1  # a lifetime
        else:
            i += 1
    return "".join(out)


CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
ATTR = re.compile(r"\s*#\s*\[")
TEST_MOD_DECL = re.compile(r"\s*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;")


def nested(code, i):
    """The brackets and `;` from code[i] on, each as (match, depth): an opening bracket at the
    depth around it, a closing one at the depth after it."""
    depth = 0
    for m in BRACKET.finditer(code, i):
        c = m.group(0)
        if c in ")]}":
            depth -= 1
        yield m, depth
        if c in "([{":
            depth += 1


def skip_brackets(code, i):
    """Index after the bracket group opening at code[i]."""
    for m, depth in nested(code, i):
        if depth == 0 and m.group(0) in ")]}":
            return m.end()
    return len(code)


def item_end(code, i):
    """Index after the item starting at or after code[i]: its `;` at depth 0 or its body's `}`."""
    for m, depth in nested(code, i):
        if depth == 0 and m.group(0) == "{":
            return skip_brackets(code, m.start())
        if depth == 0 and m.group(0) == ";":
            return m.end()
    return len(code)


def remove_test_items(code):
    """`code` with every item after a `#[cfg(test)]` attribute blanked; also the names of the
    modules declared `#[cfg(test)] mod name;` (their files are test code)."""
    out = list(code)
    test_mods = []
    pos = 0
    while True:
        m = CFG_TEST.search(code, pos)
        if not m:
            break
        i = m.end()
        while True:  # further attributes on the same item
            a = ATTR.match(code, i)
            if not a:
                break
            i = skip_brackets(code, a.end() - 1)
        decl = TEST_MOD_DECL.match(code, i)
        if decl:
            test_mods.append(decl.group(1))
        end = item_end(code, i)
        out[m.start():end] = NOT_NEWLINE.sub(" ", code[m.start():end])
        pos = end
    return "".join(out), test_mods


# Use trees.

USE = re.compile(r"(?<![A-Za-z0-9_:$])use\s")
TOKEN = re.compile(r"::|[{},*;]|r#" + IDENT + "|" + IDENT + r"|\S")


def parse_use_tree(tokens):
    """Leaves of a use tree: (segments, bound name or None, glob, offset of the last token)."""
    pos = 0

    def tree(prefix):
        nonlocal pos
        segs = list(prefix)
        last = tokens[pos][1] if pos < len(tokens) else 0
        if pos < len(tokens) and tokens[pos][0] == "::":
            pos += 1  # a leading `::` (an extern crate)
        while pos < len(tokens):
            tok, off = tokens[pos]
            if tok == "{":
                pos += 1
                leaves = []
                while pos < len(tokens) and tokens[pos][0] != "}":
                    leaves += tree(segs)
                    if pos < len(tokens) and tokens[pos][0] == ",":
                        pos += 1
                pos += 1
                return leaves
            if tok == "*":
                pos += 1
                return [(segs, None, True, off)]
            segs.append(tok[2:] if tok.startswith("r#") else tok)
            last = off
            pos += 1
            if pos < len(tokens) and tokens[pos][0] == "::":
                pos += 1
                continue
            break
        alias = None
        if pos + 1 < len(tokens) and tokens[pos][0] == "as":
            alias = tokens[pos + 1][0]
            pos += 2
        if len(segs) > 1 and segs[-1] == "self":
            segs = segs[:-1]
        return [(segs, alias or (segs[-1] if segs else None), False, last)]

    return tree([])


# The crate.


class Source:
    def __init__(self, path, rel, module, test):
        self.path, self.rel, self.module, self.test = path, rel, module, test
        text = path.read_text(encoding="utf-8")
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.code, self.test_mods = remove_test_items(blank_comments_and_literals(text))

    def line(self, offset):
        return bisect.bisect_right(self.starts, offset)


def module_of(rel):
    """Module path of a file relative to shared/src ('' for the crate root)."""
    parts = list(rel.with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts)


def is_test_file(rel):
    return rel.name == "tests.rs" or "tests" in rel.parts[:-1]


def load(root):
    src = root / SOURCE_DIR
    if not src.is_dir():
        raise SystemExit(f"check_architecture: no {SOURCE_DIR} under {root}")
    files = []
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        files.append(Source(path, path.relative_to(root).as_posix(), module_of(rel),
                            is_test_file(rel)))
    test_roots = {f"{f.module}::{m}" if f.module else m for f in files for m in f.test_mods}
    for f in files:
        if any(under(f.module, t) for t in test_roots):
            f.test = True
    return files


def join(*parts):
    return "::".join(p for p in parts if p)


class Crate:
    def __init__(self, files):
        self.files = files
        self.modules = {f.module for f in files}
        # module -> {name: absolute segments}: what each `use` binds, `pub` or not (a child
        # module sees its parent's private imports, so `super::Name` may name one)
        self.reexports = {}
        self.uses = {}  # file rel -> [(absolute segments, bound name, glob, offset)]
        for f in files:
            self.uses[f.rel] = self._uses(f)
        for f in files:
            for segs, alias, glob, _ in self.uses[f.rel]:
                if not glob and segs is not None and alias:
                    self.reexports.setdefault(f.module, {})[alias] = segs

    def _uses(self, f):
        found = []
        for m in USE.finditer(f.code):
            end = f.code.find(";", m.end())
            end = len(f.code) if end < 0 else end
            tokens = [(t.group(0), m.end() + t.start())
                      for t in TOKEN.finditer(f.code[m.end():end])]
            for segs, alias, glob, off in parse_use_tree(tokens):
                found.append((self.absolute(f.module, segs, {}), alias, glob, off))
        return found

    def absolute(self, current, segs, bound):
        """Absolute segments of a path named in module `current`, or None (another crate)."""
        if not segs:
            return None
        head, rest = segs[0], list(segs[1:])
        base = current.split("::") if current else []
        if head == "crate":
            return rest
        if head == "self":
            return base + rest
        if head == "super":
            while True:
                base = base[:-1]
                if rest and rest[0] == "super":
                    rest = rest[1:]
                    continue
                return base + rest
        if join(current, head) in self.modules:
            return base + [head] + rest
        if head in bound:
            return bound[head] + rest
        return None

    def target(self, segs, depth=0):
        """The module a path's item lives in, following what `use` statements bind (a module's
        `pub use` re-exports, most often); None for the crate root."""
        module = []
        for i, seg in enumerate(segs):
            nxt = module + [seg]
            if "::".join(nxt) in self.modules:
                module = nxt
                continue
            re_ = self.reexports.get("::".join(module), {})
            if seg in re_ and depth < 8 and re_[seg] != module + [seg]:
                found = self.target(re_[seg] + segs[i + 1:], depth + 1)
                if found:
                    return found
            break
        return "::".join(module) or None

    def imports(self, f):
        """(module, line) of every crate module a file's production code names."""
        found = []
        bound = {}
        prefix = f.module + "::" if f.module else ""
        for mod in self.modules:  # child modules are in scope by their name
            if mod.startswith(prefix) and "::" not in mod[len(prefix):] and mod != f.module:
                bound[mod[len(prefix):]] = mod.split("::")
        spans = []
        for segs, alias, glob, off in self.uses[f.rel]:
            if segs is None:
                continue
            whole = "::".join(segs)
            if not glob and whole in self.modules and alias and alias != "self":
                bound[alias] = segs  # a module bound to a name: counted where the name is used
                continue
            tgt = self.target(segs)
            if tgt:
                found.append((tgt, f.line(off)))
        for m in USE.finditer(f.code):
            end = f.code.find(";", m.end())
            spans.append((m.start(), len(f.code) if end < 0 else end))
        code = list(f.code)
        for a, b in spans:  # use statements are read above; blank them for the path scan
            code[a:b] = NOT_NEWLINE.sub(" ", f.code[a:b])
        code = "".join(code)
        heads = ["crate", "super", "self"] + sorted(bound, key=len, reverse=True)
        path = re.compile(r"(?<![A-Za-z0-9_:$.])(" + "|".join(map(re.escape, heads)) + r")"
                          r"((?:\s*::\s*" + IDENT + r")+)")
        for m in path.finditer(code):
            segs = [m.group(1)] + [s.strip() for s in m.group(2).split("::")[1:]]
            absolute = self.absolute(f.module, segs, bound)
            if absolute is None:
                continue
            tgt = self.target(absolute)
            if tgt:
                found.append((tgt, f.line(m.start())))
        return found


def rule_violation(src, dst):
    """Why `src` may not import `dst`, or None."""
    if src == dst:
        return None
    for gated, why in FEATURE_GATED.items():
        if under(dst, gated) and not under(src, gated):
            return why
    for only, why in TEST_ONLY.items():
        if under(dst, only) and not under(src, only):
            return why
    s, d = layer_of(src), layer_of(dst)
    if s is None or d is None:
        return None  # reported once per module as unclassified
    if d[0] > s[0]:
        lo = "L0" if s[0] == 0 else f"L0 to L{s[0]}"
        return f"L{s[0]} {s[1]} may import {lo} only"
    return None


def node(module):
    return "::".join(module.split("::")[:2])


def find_cycles(edges):
    """One shortest cycle per strongly connected component of more than one node, with the
    component: [(cycle, component)]. The graph is small (tens of nodes): plain reachability."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())

    def reachable(v):
        seen, todo = set(), [v]
        while todo:
            for w in graph[todo.pop()] - seen:
                seen.add(w)
                todo.append(w)
        return seen

    reach = {v: reachable(v) for v in graph}
    components = sorted({tuple(sorted(w for w in reach[v] if v in reach[w]))
                         for v in graph if v in reach[v]})
    cycles = []
    for scc in (c for c in components if len(c) > 1):
        members, start = set(scc), scc[0]
        prev, queue, last = {start: None}, [start], None
        while last is None:  # breadth first: the shortest way back to start
            nxt = []
            for u in queue:
                for w in sorted(graph[u] & members):
                    if w == start and last is None:
                        last = u
                    elif w not in prev:
                        prev[w] = u
                        nxt.append(w)
            queue = nxt
        path = [last]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append((list(reversed(path)) + [start], list(scc)))
    return cycles


def check(root, show_all=False, doc=True, edges_out=None):
    files = load(root)
    crate = Crate(files)
    problems = []
    seen = set()
    edges = {}
    count = 0
    for f in files:
        if f.test or not f.module:
            continue
        if layer_of(f.module) is None:
            problems.append(f"{f.rel}:1: {f.module} is in no layer: add it to LAYERS in "
                            f"scripts/check_architecture.py and to {DOC.as_posix()}")
        for dst, line in sorted(crate.imports(f), key=lambda x: x[1]):
            count += 1
            if edges_out is not None:
                edges_out.append(f"{f.rel}:{line}: {f.module} ({label(f.module)}) -> {dst} "
                                 f"({label(dst)})")
            a, b = node(f.module), node(dst)
            if a != b and not under(a, b) and not under(b, a):
                edges.setdefault((a, b), f"{f.rel}:{line}")
            why = rule_violation(f.module, dst)
            if why is None or (not show_all and (f.rel, dst) in seen):
                continue
            seen.add((f.rel, dst))
            problems.append(f"{f.rel}:{line}: {f.module} ({label(f.module)}) imports {dst} "
                            f"({label(dst)}): {why}")
    for cycle, scc in find_cycles(edges):
        where = ", ".join(edges[(a, b)] for a, b in zip(cycle, cycle[1:]))
        more = "" if len(scc) == len(cycle) - 1 else f"; its component: {', '.join(scc)}"
        problems.append(f"{edges[(cycle[0], cycle[1])]}: import cycle: {' -> '.join(cycle)} "
                        f"(at {where}){more}")
    if doc:
        problems += check_doc(root)
    production = [f for f in files if not f.test]
    return problems, (f"architecture: {len(production)} files, {count} crate imports, "
                      f"{len(LAYERS)} layers: no violations, no cycles")


def check_doc(root):
    path = root / DOC
    if not path.is_file():
        return [f"{DOC.as_posix()}:1: missing: it carries the layer table (--print-table)"]
    text = path.read_text(encoding="utf-8")
    a, b = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if a < 0 or b < a:
        return [f"{DOC.as_posix()}:1: no layer table between `{TABLE_BEGIN}` and `{TABLE_END}`"]
    if text[a + len(TABLE_BEGIN): b].strip() != render_table():
        line = text[:a].count("\n") + 1
        return [f"{DOC.as_posix()}:{line}: the layer table is not the one in "
                f"scripts/check_architecture.py (paste `--print-table`)"]
    return []


def main(argv=None):
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=here.parent,
                        help="the repository (default: this script's parent directory)")
    parser.add_argument("--all", action="store_true",
                        help="every offending line, not only the first per file and target")
    parser.add_argument("--no-doc", action="store_true",
                        help="do not compare the table in docs/ARCHITECTURE.md")
    parser.add_argument("--edges", action="store_true",
                        help="print every production import found, then check as usual")
    parser.add_argument("--print-table", action="store_true",
                        help="print the layer table for docs/ARCHITECTURE.md and exit")
    parser.add_argument("--self-test", action="store_true",
                        help="run scripts/test_check_architecture.py and exit")
    args = parser.parse_args(argv)
    if args.print_table:
        print(render_table())
        return 0
    if args.self_test:
        return subprocess.call([sys.executable, str(here / "test_check_architecture.py")])
    listed = [] if args.edges else None
    problems, summary = check(args.root, show_all=args.all, doc=not args.no_doc,
                              edges_out=listed)
    for e in listed or []:
        print(e)
    for p in problems:
        print(p)
    if problems:
        print(f"architecture: {len(problems)} violation(s); the rule is in {DOC.as_posix()}",
              file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
