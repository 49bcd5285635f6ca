#!/usr/bin/env python3
"""count_tests.py LOG... - counts TAP subtests in meson testlog.json files and
prints "N passed, N failed". A test with no TAP lines counts once by its
result; a test that failed without any "not ok" line (a crash, a timeout)
adds one failure; a missing log (the build failed) adds one failure.
Each "not ok" line is echoed to stderr with the diagnostic lines after it
(meson shows a failed test's stderr, not its TAP stream). Exits 1 when
anything failed."""
import json
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(.*)$")
passed = failed = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print("count_tests: no test log %s (the build failed?)" % path, file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        good = t["result"] in ("OK", "EXPECTEDFAIL", "SKIP")
        oks = nots = 0
        outs = t.get("stdout", "").splitlines()
        for i, out in enumerate(outs):
            m = TAP.match(out)
            if not m or "# SKIP" in m.group(2):
                continue
            if m.group(1) == "ok":
                oks += 1
                continue
            nots += 1
            print("%s: %s: %s" % (path, t["name"], out), file=sys.stderr)
            for more in outs[i + 1:i + 6]:
                if not more.startswith("#"):
                    break
                print("    " + more, file=sys.stderr)
        if oks == 0 and nots == 0:
            oks, nots = (1, 0) if good else (0, 1)
        elif not good and nots == 0:
            nots = 1
        passed += oks
        failed += nots
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
