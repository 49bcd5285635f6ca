"""layout_test.py - the source tree keeps the shape its READMEs describe:
only runtime/sched/ includes the scheduler's private header, a lower layer
never includes a higher one, library files stay under 900 lines and
functions (library and CLI) under 120, and every folder of the library has
a README.md. Usage: layout_test.py SOURCE_ROOT."""
import os
import re
import sys

from tap import case, finish

root = sys.argv[1]
LIB = ["runtime", "pool", "sessions", "hibernate"]
# Each layer and what it may include (besides include/shoal.h and the
# build's shoal_build.h).
MAY = {
    "runtime": ["runtime/"],
    "runtime/topo": ["runtime/"],
    "runtime/sched": ["runtime/"],
    "runtime/actors": ["runtime/"],
    "pool": ["runtime/", "pool/"],
    "sessions": ["runtime/", "pool/", "sessions/"],
    "hibernate": ["runtime/", "pool/", "sessions/", "hibernate/"],
}
BELOW = {  # what a room of runtime/ may not include
    "runtime": ["runtime/topo/", "runtime/sched/", "runtime/actors/"],
    "runtime/topo": ["runtime/sched/", "runtime/actors/"],
    "runtime/sched": ["runtime/actors/"],
}


def sources(folders, exts=(".c", ".h")):
    for top in folders:
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith(exts):
                    yield os.path.relpath(os.path.join(d, f), root)


def includes(path):
    with open(os.path.join(root, path), errors="replace") as f:
        return re.findall(r'^#include "([^"]+)"', f.read(), re.M)


def functions(path):
    """(name, first line, lines) of each function definition: a line at
    column 0 that opens a body, up to the closing brace at column 0."""
    with open(os.path.join(root, path), errors="replace") as f:
        lines = f.read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^(?:static |inline )*[A-Za-z_][\w \*]*?\b(\w+)\(", lines[i])
        if m and not lines[i].startswith(("typedef", "#", "struct ", "enum ")):
            j = i
            while j < len(lines) and not lines[j].rstrip().endswith(("{", ";")):
                j += 1
            if j < len(lines) and lines[j].rstrip().endswith("{"):
                k = j + 1
                while k < len(lines) and not lines[k].startswith("}"):
                    k += 1
                out.append((m.group(1), i + 1, k - i + 1))
                i = k
        i += 1
    return out


@case("only runtime/sched/ includes scheduler.h")
def private_scheduler():
    bad = [p for p in sources(LIB + ["cli"])
           if not p.startswith("runtime/sched/")
           and any(i.endswith("scheduler.h") for i in includes(p))]
    assert not bad, "includes scheduler.h: %s" % ", ".join(bad)


@case("a lower layer never includes a higher one")
def layers():
    bad = []
    for p in sources(LIB):
        folder = os.path.dirname(p)
        for inc in includes(p):
            if "/" not in inc:
                continue
            if not any(inc.startswith(a) for a in MAY[folder]) or \
               any(inc.startswith(b) for b in BELOW.get(folder, [])):
                bad.append("%s -> %s" % (p, inc))
    assert not bad, "\n".join(bad)


@case("no library file over 900 lines")
def file_length():
    bad = []
    for p in sources(LIB, (".c",)):
        with open(os.path.join(root, p)) as f:
            n = f.read().count("\n")
        if n > 900:
            bad.append("%s: %d lines" % (p, n))
    assert not bad, "\n".join(bad)


@case("no function over 120 lines in the library or the CLI")
def function_length():
    bad = ["%s:%d %s: %d lines" % (p, line, name, n)
           for p in sources(LIB + ["cli"], (".c",))
           for name, line, n in functions(p) if n > 120]
    assert not bad, "\n".join(bad)


@case("every folder of the library has a README.md")
def readmes():
    bad = []
    for top in LIB + ["cli", "bench", "examples", "tests"]:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            rel = os.path.relpath(d, root)
            if rel.startswith("tests/") or \
               not any(f.endswith((".c", ".h")) for f in files):
                continue
            if "README.md" not in files:
                bad.append(rel)
    assert not bad, "no README.md in: %s" % ", ".join(bad)


finish()
