#!/usr/bin/env python3
"""check.py MODEL - verifies a Promela model with spin: park.pml (the
worker parking protocol), mail.pml (the sessions' mail bits) or
retire.pml (a removed worker's inbox). An
exhaustive search of each configuration below must end with no error and
a complete search, and the model's deliberately broken variant (BROKEN=1)
must be caught. Prints TAP, with the states searched; skipped with a
message where spin or a C compiler is missing (.ci/run installs Debian's
spin)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

MODEL = os.path.abspath(sys.argv[1])
# Per model: (defines, must it hold?) — sizes chosen so that each search
# is exhaustive within CI's memory and a minute of time — the property's
# name, and what pan prints when the broken variant is caught.
MODELS = {
    "park.pml": ([
        ("N=2 EXTERNAL=2 SPAWNS=1", True),
        ("N=2 EXTERNAL=1 SPAWNS=2", True),
        ("N=2 EXTERNAL=3 SPAWNS=0", True),
        ("N=3 EXTERNAL=1 SPAWNS=1 OWN_WAKES=0", True),
        ("N=2 EXTERNAL=2 SPAWNS=1 BROKEN=1", False),
    ], "no lost wake-up", "invalid end state"),
    "retire.pml": ([
        ("S=2", True),
        ("S=3", True),
        ("S=2 REVIVE=1", True),
        ("S=3 REVIVE=1", True),
        ("S=2 BROKEN=1", False),
    ], "no stranded task, one consumer at a time", "invalid end state"),
    "mail.pml": ([
        ("S=2 K=2 LIMIT=1", True),
        ("S=3 K=2 LIMIT=2", True),
        ("S=2 K=3 LIMIT=1", True),
        ("S=2 K=2 LIMIT=1 BROKEN=1", False),
    ], "no stranded packet", "assertion violated"),
}
BASE = os.path.basename(MODEL)
CONFIGS, PROPERTY, CAUGHT = MODELS[BASE]

spin = shutil.which("spin")
cc = shutil.which("cc") or shutil.which("gcc")
if spin is None or cc is None:
    print("1..0 # SKIP %s is not installed (.ci/run installs Debian's spin)"
          % ("spin" if spin is None else "a C compiler"))
    sys.exit(0)

results = []
for defines, holds in CONFIGS:
    name = "%s %s: %s" % (BASE, defines, PROPERTY if holds else
                          "the broken variant is caught")
    with tempfile.TemporaryDirectory() as d:
        args = ["-D" + x for x in defines.split()]
        t0 = time.monotonic()
        p = subprocess.run([spin, *args, "-a", MODEL], cwd=d,
                           capture_output=True, text=True)
        if p.returncode != 0:
            results.append((False, name, "spin -a: " + p.stdout + p.stderr))
            continue
        p = subprocess.run([cc, "-O2", "-w", "-DSAFETY", "-DCOLLAPSE", "-o",
                            "pan", "pan.c"], cwd=d, capture_output=True,
                           text=True)
        if p.returncode != 0:
            results.append((False, name, "cc pan.c: " + p.stderr[-800:]))
            continue
        p = subprocess.run(["./pan", "-m200000", "-w26"], cwd=d,
                           capture_output=True, text=True, timeout=900)
        out = p.stdout
        m = re.search(r"errors: (\d+)", out)
        states = re.search(r"(\d+) states, stored", out)
        why = "%s states in %.1f s" % (states.group(1) if states else "?",
                                       time.monotonic() - t0)
        if m is None:
            results.append((False, name, "no result from pan:\n" + out[-800:]))
        elif holds:
            ok = m.group(1) == "0" and "Search not completed" not in out
            results.append((ok, name, why if ok else out[-1500:]))
        else:
            ok = m.group(1) != "0" and CAUGHT in out
            results.append((ok, name, why if ok else out[-1500:]))

print("1..%d" % len(results))
for i, (ok, name, why) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    for line in why.splitlines():
        print("# " + line)
sys.exit(0 if all(ok for ok, _, _ in results) else 1)
