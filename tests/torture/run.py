#!/usr/bin/env python3
"""run.py TORTURE BROKEN SECONDS - the torture suite as TAP: the full run
for SECONDS must end in SUCCESS with 0 violations; the build whose deque
has steal's CAS split (SHOAL__DEQUE_BROKEN=2) must end in FAILURE with
violations, not in a crash; bad flags give status 2. Each case prints the
run's figures as TAP comments, which tests/reliability.py collects."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tap import case, eq, finish  # noqa: E402

torture, broken, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
LAST = re.compile(r"^(SUCCESS|FAILURE): (\d+) threads x (\d+) s, (\d+) checked, "
                  r"(\d+) violations, (\d+) stutters, (\d+) re-pins", re.M)


def run(exe, *args, env=None):
    p = subprocess.run([exe, *args], capture_output=True, text=True, env=env,
                       errors="replace", timeout=int(seconds) * 4 + 120)
    return p, LAST.findall(p.stdout)


def show(p):
    for line in p.stdout.splitlines()[-16:]:
        print("# " + line)
    for line in p.stderr.splitlines()[-8:]:
        print("# stderr: " + line)


@case("the torture run ends in SUCCESS with no violation")
def full():
    p, last = run(torture, "--seconds", str(seconds), "--threads", "4",
                  "--stutter", "500", "--repin", "20", "--seed", "1")
    show(p)
    assert last, "no SUCCESS or FAILURE line (status %d)" % p.returncode
    eq(last[-1][0], "SUCCESS", "verdict")
    eq(last[-1][4], "0", "violations")
    eq(p.returncode, 0, "status")
    per = dict(re.findall(r"^torture: (\w+) +(\d+) checked$", p.stdout, re.M))
    for kind in ("deque", "mpsc", "mpmc", "spsc", "runtime", "actors"):
        assert int(per.get(kind, 0)) > 0, "%s checked nothing" % kind


@case("the broken deque (steal's CAS split) is caught")
def caught():
    # Under ThreadSanitizer the split CAS is also a data race on the
    # payload; the sanitizer may say so, but the verdict must be the
    # harness's own, so it neither halts nor sets the status.
    env = dict(os.environ)
    env["TSAN_OPTIONS"] = env.get("TSAN_OPTIONS", "") + \
        ":halt_on_error=0:exitcode=0:report_bugs=0"
    p, last = run(broken, "--only", "deque", "--seconds",
                  str(max(2, seconds // 4)), "--threads", "4", "--seed", "1",
                  env=env)
    show(p)
    eq(p.returncode, 1, "status (1: FAILURE; a signal is a crash)")
    assert "FAILURE" in p.stdout, "no FAILURE line"
    if last:
        assert int(last[-1][4]) > 0, "FAILURE without violations"


@case("bad flags give status 2 and say why")
def bad_flags():
    for args in (["--threads", "1"], ["--seconds", "x"], ["--only", "heap"],
                 ["stray"]):
        p = subprocess.run([torture, *args], capture_output=True, text=True,
                           timeout=30)
        eq(p.returncode, 2, "status of %s" % args)
        assert p.stderr.strip(), "no message for %s" % args


finish()
