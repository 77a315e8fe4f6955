#!/usr/bin/env python3
"""The layer test: calls in src/ go only down the floor table.

src/README.md holds the one floor plan: a table of src/ files by floor,
lowest first.  A file may use (call, or read a global of) files on its own
floor or below, and never a file on a higher floor.  This script derives the
cross-file uses from the code and fails listing every use that goes up the
table, unless it is

  - one of the EXCEPTIONS below (lazy init from entry points), or
  - listed in KNOWN_UPWARD: upward uses that exist today, each a piece of
    debt of issue #14 to remove.  The list only shrinks: an entry whose use
    is gone fails the test too, so whoever removes the call removes the
    entry.

How the uses are found (stdlib only, no build needed):
  - comments, strings and character literals are blanked;
  - every non-static function or global variable defined at file scope in
    src/**/*.c is a symbol of that file;
  - every `vam_*` identifier a .c file names that another file defines is a
    use of that file (calls, address-taking and variable reads alike);
  - the static inline functions and macros (VAM_COUNT, VAM_OS_RETRY...)
    of src/*.h and src/os/*.h are followed: a file that calls
    vam__ensure_init() uses init.c's vam__init_slow and vam__init_state,
    and the use is reported "via" the helper.
#if'd code counts whatever the configuration (secure, fault-injection and
TSan builds included).

Usage:
  check_layers.py SRC_ROOT            check (exit 1 on a violation)
  check_layers.py SRC_ROOT --graph    also print which file uses which
  check_layers.py SRC_ROOT --graph-only   print the graph, check nothing
SRC_ROOT is the repository root (the directory holding src/).  Extra source
files (a scratch mutation) can be added with --extra FILE=AS, e.g.
--extra /tmp/evil.c=chunk.c treats /tmp/evil.c as more of src/chunk.c.
"""
import os
import re
import sys

# Uses that go up the table on purpose.  (defining file, symbol): reason.
EXCEPTIONS = {
    ("init.c", "vam__init_slow"): "lazy init: entry points call vam__ensure_init()",
    ("init.c", "vam__init_state"): "lazy init: vam__ensure_init() reads the state",
}

# Upward uses that exist today: debt of issue #14, to be removed (then the
# entry goes too; a stale entry fails the test).  (user file, defining file,
# symbol): reason.
KNOWN_UPWARD = {
    # (empty: alloc.c reaches first-class heaps through the hooks userheap.c
    # installs, internal.h vam__userheap_hooks)
}

IDENT = re.compile(r"[A-Za-z_]\w*")


def blank(text):
    """Comments, strings and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_preproc(text):
    """(code with directive lines blanked, [(line, directive text)])."""
    lines = text.split("\n")
    code, directives = [], []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("#"):
            start, parts = i, [lines[i]]
            while lines[i].endswith("\\") and i + 1 < len(lines):
                i += 1
                parts.append(lines[i])
            directives.append((start + 1, " ".join(p.rstrip("\\") for p in parts)))
            code.extend([""] * (i - start + 1))
        else:
            code.append(lines[i])
        i += 1
    return "\n".join(code), directives


def top_level(code):
    """Yield (kind, text, offset) for each file-scope item: ('func', head,
    body_start, body_end) or ('decl', text, offset)."""
    depth, start, i, n = 0, 0, 0, len(code)
    paren = 0
    while i < n:
        c = code[i]
        if c == "(":
            paren += 1
        elif c == ")":
            paren -= 1
        elif c == "{" and paren == 0:
            if depth == 0:
                head = code[start:i]
                # find the matching close brace
                d, j = 0, i
                while j < n:
                    if code[j] == "{":
                        d += 1
                    elif code[j] == "}":
                        d -= 1
                        if d == 0:
                            break
                    j += 1
                if func_name(head):
                    yield ("func", head, start, i, j + 1)
                    i = j + 1
                    start = i
                    continue
                # an initializer or a struct/enum body: skip to the ';'
                i = j + 1
                continue
            depth += 1
        elif c == "}" and paren == 0:
            depth -= 1
        elif c == ";" and depth == 0 and paren == 0:
            yield ("decl", code[start:i], start)
            start = i + 1
        i += 1


def strip_attributes(head):
    """head with every __attribute__((...)) group removed."""
    while True:
        i = head.find("__attribute__")
        if i < 0:
            return head
        j = head.find("(", i)
        if j < 0:
            return head[:i]
        d, k = 0, j
        while k < len(head):
            if head[k] == "(":
                d += 1
            elif head[k] == ")":
                d -= 1
                if d == 0:
                    break
            k += 1
        head = head[:i] + " " + head[k + 1:]


FUNC_HEAD = re.compile(r"(\w+)\s*\((?:[^()]|\([^()]*\))*\)\s*$", re.S)


def func_name(head):
    """(name, words before it) of a function definition's head, or None."""
    h = strip_attributes(head)
    m = FUNC_HEAD.search(h)
    if not m or "=" in h[:m.start()]:
        return None
    return m.group(1), IDENT.findall(h[:m.start(1)])


def line_of(text, off):
    return text.count("\n", 0, off) + 1


class Source:
    def __init__(self, name, text):
        self.name = name          # path relative to src/
        self.text = blank(text)
        self.code, self.directives = split_preproc(self.text)
        self.defs = set()         # non-static functions and globals
        self.uses = []            # (line, identifier)
        for item in top_level(self.code):
            if item[0] == "func":
                _, head, start, body, end = item
                name, words = func_name(head)
                if "static" not in words and "typedef" not in words:
                    self.defs.add(name)
            else:
                _, decl, start = item
                words = IDENT.findall(decl)
                if not words or words[0] in ("extern", "typedef", "static") or "static" in words[:3]:
                    continue
                if words[0] in ("struct", "union", "enum") and "{" not in decl and len(words) <= 2:
                    continue
                head = decl.split("=")[0]
                for m in re.finditer(r"\b(vam_\w*)\s*(\(|\[|,|$)", head):
                    if m.group(2) != "(":
                        self.defs.add(m.group(1))
        # every identifier: vam_* names, and the header macros and inline
        # functions (VAM_COUNT, VAM_OS_RETRY...) that are followed below
        for m in IDENT.finditer(self.text):
            self.uses.append((line_of(self.text, m.start()), m.group(0)))


def header_helpers(paths):
    """name -> set of identifiers its body names, for static inline
    functions and macros of the headers."""
    helpers = {}
    for path in paths:
        text = blank(open(path, encoding="utf-8").read())
        code, directives = split_preproc(text)
        for _, d in directives:
            m = re.match(r"\s*#\s*define\s+(\w+)(\([^)]*\))?(.*)", d, re.S)
            if m:
                helpers.setdefault(m.group(1), set()).update(IDENT.findall(m.group(3)))
        for item in top_level(code):
            if item[0] == "func":
                _, head, start, body, end = item
                name, words = func_name(head)
                if "static" in words:
                    helpers.setdefault(name, set()).update(IDENT.findall(code[body:end]))
    return helpers


def read_floors(readme):
    """file (relative to src/) -> (floor index, floor name), from the first
    table of src/README.md whose header starts with 'floor'."""
    floors, names, in_table = {}, [], False
    for line in open(readme, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            if in_table:
                break
            continue
        if not in_table:
            if cells[0].lower() == "floor":
                in_table = True
            continue
        if set(cells[0]) <= set("-: "):
            continue
        idx = len(names)
        names.append(cells[0])
        for f in re.findall(r"`([^`]+\.c)`", cells[1]):
            floors[f] = (idx, cells[0])
    return floors, names


def analyse(root, extra=()):
    src = os.path.join(root, "src")
    sources = {}
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(".c"):
                rel = os.path.relpath(os.path.join(dirpath, f), src)
                sources[rel] = Source(rel, open(os.path.join(dirpath, f), encoding="utf-8").read())
    for path, as_name in extra:
        s = Source(as_name, open(path, encoding="utf-8").read())
        base = sources.setdefault(as_name, s)
        if base is not s:
            base.defs |= s.defs
            base.uses += [(l, u) for l, u in s.uses]
    headers = [os.path.join(src, h) for h in sorted(os.listdir(src)) if h.endswith(".h")]
    headers += [os.path.join(src, "os", h) for h in sorted(os.listdir(os.path.join(src, "os"))) if h.endswith(".h")]
    helpers = header_helpers(headers)

    definers = {}
    for rel, s in sources.items():
        for d in s.defs:
            definers.setdefault(d, set()).add(rel)

    def expand(name, seen):
        """Symbols defined in .c files that helper `name` reaches."""
        out = set()
        for ident in helpers.get(name, ()):
            if ident in definers:
                out.add(ident)
            elif ident in helpers and ident not in seen:
                seen.add(ident)
                out |= expand(ident, seen)
        return out

    # edges[(user, definer, symbol)] = [(line, via)]
    edges = {}
    for rel, s in sources.items():
        for line, ident in s.uses:
            targets = [(ident, "")] if ident in definers and ident.startswith("vam_") else []
            if not targets and ident in helpers:
                targets = [(t, ident) for t in sorted(expand(ident, {ident}))]
            for sym, via in targets:
                for d in definers[sym]:
                    if d != rel and rel not in definers[sym]:
                        edges.setdefault((rel, d, sym), []).append((line, via))
    return sources, edges


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = [a for a in argv[1:] if a.startswith("--")]
    extra = []
    rest = []
    it = iter(argv[1:])
    for a in it:
        if a == "--extra":
            p, _, as_name = next(it).partition("=")
            extra.append((p, as_name))
        elif not a.startswith("--"):
            rest.append(a)
    root = rest[0] if rest else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    floors, names = read_floors(os.path.join(root, "src", "README.md"))
    if not floors:
        print("src/README.md: no floor table (a table whose first column is 'floor')")
        return 1
    sources, edges = analyse(root, extra)

    if "--graph" in flags or "--graph-only" in flags:
        by_pair = {}
        for (u, d, sym), where in edges.items():
            by_pair.setdefault((u, d), []).append(sym)
        print("file uses (symbols):")
        for (u, d) in sorted(by_pair, key=lambda p: (floors.get(p[0], (99,))[0], p[0], floors.get(p[1], (99,))[0], p[1])):
            print(f"  {u} -> {d}: {', '.join(sorted(by_pair[(u, d)]))}")
        if "--graph-only" in flags:
            return 0

    errors = []
    unplaced = sorted(f for f in sources if f not in floors and not any(f == x for x, _ in extra))
    for f in unplaced:
        errors.append(f"src/{f}: not in the floor table of src/README.md")
    for f in sorted(floors):
        if f not in sources:
            errors.append(f"src/README.md names src/{f}, which does not exist")

    upward, seen_known = [], set()
    for (u, d, sym), where in sorted(edges.items()):
        if u not in floors or d not in floors:
            continue
        if floors[d][0] <= floors[u][0]:
            continue
        if (d, sym) in EXCEPTIONS:
            continue
        if (u, d, sym) in KNOWN_UPWARD:
            seen_known.add((u, d, sym))
            continue
        line, via = where[0]
        how = f" (via {via}())" if via else ""
        upward.append(f"src/{u}:{line}: {sym}{how} is {d}'s, floor '{floors[d][1]}', "
                      f"above '{floors[u][1]}'")
    stale = sorted(set(KNOWN_UPWARD) - seen_known)

    # Same-floor calls are allowed, but not both ways round: a cycle inside
    # a floor is a cycle all the same.
    same = {}
    for (u, d, sym) in edges:
        if u in floors and d in floors and floors[u][0] == floors[d][0] and (d, sym) not in EXCEPTIONS:
            same.setdefault(u, set()).add(d)
    cycles = set()

    def walk(node, path):
        for nxt in sorted(same.get(node, ())):
            if nxt in path:
                cyc = path[path.index(nxt):]
                k = cyc.index(min(cyc))
                cycles.add(tuple(cyc[k:] + cyc[:k]))
            else:
                walk(nxt, path + [nxt])
    for f in sorted(same):
        walk(f, [f])
    for cyc in sorted(cycles):
        errors.append("a call cycle inside floor '%s': %s" % (floors[cyc[0]][1], " -> ".join(cyc + (cyc[0],))))

    n_up = len(seen_known)
    if upward:
        errors.append("calls up the floor table (src/README.md), not in KNOWN_UPWARD:")
        errors += ["  " + e for e in upward]
    if stale:
        errors.append("KNOWN_UPWARD entries whose upward use is gone (remove them from "
                      "tests/unit/check_layers.py):")
        errors += [f"  {u} -> {d}: {sym}" for u, d, sym in stale]
    if errors:
        print("\n".join(errors))
        return 1
    print(f"layers ok: {len(sources)} files on {len(names)} floors, "
          f"{len(edges)} cross-file uses, {n_up} known upward (KNOWN_UPWARD, issue #14)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
