#!/usr/bin/env python3
"""report.py — runs a suite's benchmark programs (bench/run calls it),
adds the derived figures and prints a table or JSON rows."""
import json
import os
import subprocess
import sys

SUITES = {
    # program, extra arguments
    "runtime": ["bench_runtime", "bench_runtime_tbb", "bench_runtime_omp"],
    "messaging": ["bench_messaging", "bench_messaging_moody"],
    "sessions": ["bench_sessions", "bench_sessions_tbb"],
    "packets": ["bench_packets"],
    "hibernate": ["bench_hibernate"],
}


def usage(msg):
    sys.stderr.write(f"bench/run: {msg}\n"
                     "usage: bench/run SUITE [--json] [--quick] [--workers N]\n"
                     f"suites: {', '.join(SUITES)}\n")
    sys.exit(2)


def derive(rows):
    """T1/Tserial, ns per spawn and speedup from the measured medians."""
    med = {(r["case"], r["impl"], r["workers"]): r["value"]
           for r in rows if r["metric"] == "median_s"}
    spawns = {r["case"]: r["value"] for r in rows if r["metric"] == "spawns"}
    out = []
    for (case, impl, w), t in med.items():
        serial = med.get((case, "serial", 1))
        if impl == "serial" or serial is None:
            continue
        if w == 1:
            out.append(dict(case=case, impl=impl, workers=1,
                            metric="t1_over_tserial", value=t / serial, unit="x"))
            if spawns.get(case):
                out.append(dict(case=case, impl=impl, workers=1,
                                metric="ns_per_spawn",
                                value=(t - serial) * 1e9 / spawns[case],
                                unit="ns"))
        elif (case, impl, 1) in med:
            out.append(dict(case=case, impl=impl, workers=w, metric="speedup",
                            value=med[(case, impl, 1)] / t, unit="x"))
    return rows + out + derive_ticks(rows)


def derive_ticks(rows):
    """For the manager's ticks: overhead per session per tick (CPU time of
    the tick, p50 × workers, less the serial loop's time for the same work,
    over the 5000 sessions), p50 against the ideal serial / workers, and
    the manager's p50 over the runtime's bare tick of the same run."""
    p50 = {(r["case"], r["impl"]): (r["workers"], r["value"])
           for r in rows if r["metric"] == "tick_p50_us"
           and r["case"].startswith("mgr_")}
    out = []
    for (case, impl), (w, t) in p50.items():
        serial = p50.get((case, "serial"))
        if impl == "serial" or serial is None:
            continue
        out.append(dict(case=case, impl=impl, workers=w,
                        metric="overhead_ns_per_session",
                        value=(t * w - serial[1]) * 1e3 / 5000, unit="ns"))
        out.append(dict(case=case, impl=impl, workers=w,
                        metric="p50_over_ideal",
                        value=t / (serial[1] / w), unit="x"))
        bare = p50.get((case, "shoal_bare"))
        if impl in ("shoal", "shoal_batch_cb") and bare is not None:
            out.append(dict(case=case, impl=impl, workers=w,
                            metric="p50_over_bare", value=t / bare[1],
                            unit="x"))
    return out


def table(rows):
    cols = ["case", "impl", "workers", "metric", "value", "unit"]
    order = {}
    for r in rows:
        order.setdefault(r["case"], len(order))
    rows = sorted(rows, key=lambda r: (order[r["case"]], r["metric"],
                                       r["impl"], r["workers"]))
    cells = [[str(r["case"]), r["impl"], str(r["workers"]), r["metric"],
              f"{r['value']:.4g}", r["unit"]] for r in rows]
    width = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.ljust(width[i]) if i != 4 else x.rjust(width[i])
                                for i, x in enumerate(xs))
    print(line(cols))
    print(line(["-" * n for n in width]))
    last = None
    for r, c in zip(rows, cells):
        if last is not None and r["case"] != last:
            print()
        last = r["case"]
        print(line(c))


def main():
    if len(sys.argv) < 3:
        usage("no suite given")
    bindir, suite, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if suite not in SUITES:
        usage(f"unknown suite '{suite}'")
    as_json = "--json" in args
    passed = []
    i = 0
    workers = os.cpu_count() or 1
    while i < len(args):
        a = args[i]
        if a == "--json":
            pass
        elif a == "--quick":
            passed.append(a)
        elif a in ("--workers", "--case") and i + 1 < len(args):
            if a == "--workers":
                try:
                    workers = int(args[i + 1])
                except ValueError:
                    usage(f"--workers wants a number, not '{args[i + 1]}'")
                if not 1 <= workers <= 1024:
                    usage("--workers must be 1…1024")
            else:
                passed += [a, args[i + 1]]
            i += 1
        else:
            usage(f"unknown option '{a}'")
        i += 1
    passed += ["--workers", str(workers)]
    rows = []
    for prog in SUITES[suite]:
        path = os.path.join(bindir, prog)
        if not os.path.exists(path):
            sys.stderr.write(f"bench/run: {prog} not built (baseline missing); "
                             "its rows are left out\n")
            continue
        sys.stderr.write(f"bench/run: {prog} {' '.join(passed)}\n")
        res = subprocess.run([path] + passed, stdout=subprocess.PIPE, text=True)
        if res.returncode != 0:
            sys.stderr.write(f"bench/run: {prog} exited with {res.returncode}\n")
        rows += [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
    rows = derive(rows)
    if as_json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        table(rows)


if __name__ == "__main__":
    main()
