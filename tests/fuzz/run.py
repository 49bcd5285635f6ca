#!/usr/bin/env python3
"""run.py TARGET SEEDS SECONDS - runs one libFuzzer target for SECONDS from
its seed corpus (new inputs go to a temporary folder, never into the
tree) and prints one TAP line with the executions; a crash, leak, timeout
or sanitizer report fails it, with libFuzzer's last lines and the input
that did it."""
import os
import re
import subprocess
import sys
import tempfile

target, seeds, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
name = os.path.basename(target)
with tempfile.TemporaryDirectory() as work:
    corpus = os.path.join(work, "corpus")
    os.mkdir(corpus)
    p = subprocess.run([target, "-max_total_time=%d" % seconds,
                        "-print_final_stats=1", "-close_fd_mask=3",
                        "-timeout=20", "-rss_limit_mb=2048",
                        "-artifact_prefix=" + work + "/", corpus, seeds],
                       capture_output=True, text=True, errors="replace",
                       timeout=seconds + 240)
    err = p.stderr
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", err)
    cov = re.findall(r"cov: (\d+)", err)
    ok = p.returncode == 0 and runs is not None
    print("1..1")
    print("%s 1 - %s: %s executions in %d s, coverage %s edges, %d seeds" % (
        "ok" if ok else "not ok", name, runs.group(1) if runs else "?",
        seconds, cov[-1] if cov else "?", len(os.listdir(seeds))))
    if not ok:
        for line in err.splitlines()[-40:]:
            print("# " + line)
        for f in os.listdir(work):
            if f.startswith(("crash-", "leak-", "timeout-", "oom-")):
                with open(os.path.join(work, f), "rb") as fh:
                    print("# %s: %r" % (f, fh.read()[:400]))
sys.exit(0 if ok else 1)
