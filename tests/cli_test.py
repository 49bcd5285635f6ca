#!/usr/bin/env python3
"""cli_test.py - the `shoal` tool as a user runs it: text and JSON outputs
for synthetic, XML and native topologies, and every bad input (status 2 and
one line on stderr); a short `shoal stress` run with its reports, whose
HTML page is drawn in headless Chromium when it is installed (.ci/run
installs it; skipped otherwise), and `--compare` of its JSON against
itself and against worse, older and failed versions of it. Prints TAP for
meson."""
import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from tap import Skip, case, eq, finish

SHOAL = sys.argv[1]
TOPOS = os.environ.get("SHOAL_TOPOLOGIES", os.path.join(os.path.dirname(__file__), "topologies"))
SYN = "pack:2 numa:2 core:4 pu:2"


def run(*args, env=None, stdout=subprocess.PIPE):
    e = dict(os.environ)
    e.pop("HWLOC_SYNTHETIC", None)
    e.pop("HWLOC_XMLFILE", None)
    if env:
        e.update(env)
    p = subprocess.run([SHOAL, *args], stdout=stdout, stderr=subprocess.PIPE,
                       env=e, timeout=120)
    out = p.stdout.decode() if p.stdout is not None else ""
    return p.returncode, out, p.stderr.decode()


def topo_json(*args, env=None):
    rc, out, err = run("topo", "--json", *args, env=env)
    eq(rc, 0, "status (stderr: %s)" % err.strip())
    return json.loads(out)


def worker(doc, w):
    return doc["plan"]["workers"][w]


@case("synthetic JSON has the schema's keys and the exact plan")
def _():
    d = topo_json("--synthetic", SYN)
    eq(d["schema_version"], 2, "schema_version")
    for k in ("cpu", "caches", "numa_nodes", "pus", "plan", "source"):
        assert k in d, "missing key %s" % k
    for k in ("vendor", "brand", "family", "model", "stepping", "codename", "features"):
        assert k in d["cpu"], "missing cpu.%s" % k
    eq(d["source"], {"kind": "synthetic", "description": SYN, "this_system": False,
                     "whole_system": False}, "source")
    eq(d["excluded_pus"], [], "nothing excluded")
    eq(d["numa_bandwidth"], None, "no bandwidth matrix")
    eq(len(d["pus"]), 32, "PUs")
    eq(len(d["numa_nodes"]), 4, "NUMA nodes")
    eq([n["os_index"] for n in d["numa_nodes"]], [0, 1, 2, 3], "node OS indices")
    eq(d["pus"][9], {"logical": 9, "os_index": 9, "core": 4, "cache_domain": 4,
                     "numa_node": 1, "package": 0, "allowed": True}, "PU 9")
    eq(d["plan"]["worker_count"], 16, "workers")
    w5 = worker(d, 5)
    eq(w5["pu_os_index"], 10, "worker 5 PU")
    eq(w5["numa_node"], 1, "worker 5 node")
    # rank 1 in its node: each level's second victim first
    eq(w5["victims"], [6, 7, 4, 1, 2, 3, 0, 13, 14, 15, 8, 9, 10, 11, 12], "worker 5 victims")
    eq(w5["victim_levels"], ["numa"] * 3 + ["package"] * 4 + ["remote"] * 8, "worker 5 levels")
    eq(w5["victim_ranks"], [0] * 3 + [1] * 4 + [2] * 8, "worker 5 ranks")
    eq(d["plan"]["first_victim_collisions"], 0, "collisions")
    eq(d["plan"]["capped_cores"], 0, "capped cores")
    assert "latency" not in d, "latency without --latency"


@case("synthetic text shows the tree and the plan")
def _():
    rc, out, err = run("topo", "--synthetic", SYN)
    eq(rc, 0, "status")
    eq(err, "", "stderr")
    assert "synthetic machine 'pack:2 numa:2 core:4 pu:2'" in out, out[:200]
    assert "Topology: 2 packages, 4 NUMA nodes" in out, "summary line"
    assert "NUMANode L#3 P#3" in out, "tree"
    assert "Plan: 16 workers (one per core)" in out, "plan header"
    # workers that read alike share a row; levels as ranges
    line = [l for l in out.splitlines() if l.strip().startswith("4-7 ")][0]
    assert "8-14 by 2" in line and "numa: 4-7  package: 0-3  remote: 8-15" in line, line
    assert "First-victim collisions: 0" in out, out[-300:]
    assert max(len(l) for l in out.splitlines()) < 200, "a line past 200 characters"
    rc, out, err = run("topo", "--synthetic", "l3:1 l2:4 core:4 pu:1")
    assert "l2: 0-3  l3: 4-15" in out, out[-600:]
    rc, out, err = run("topo", "--synthetic", "pack:8 numa:2 core:24 pu:2")
    eq(rc, 0, "status")
    assert len(out) < 40000, "a 768-PU report of %d bytes" % len(out)
    assert max(len(l) for l in out.splitlines()) < 120, "a line past 120 characters"
    rc, out, err = run("topo", "--synthetic", "core:2048 pu:1")
    assert "Plan: 1024 workers (one per core, at most 1024: 1024 cores get none)" in out, out[-400:]


@case("--workers sets the plan's size, SMT siblings after cores")
def _():
    d = topo_json("--synthetic", "core:2 pu:2", "--workers", "3")
    eq(d["plan"]["worker_count"], 3, "workers")
    eq([w["pu_os_index"] for w in d["plan"]["workers"]], [0, 2, 1], "bindings")
    eq(worker(d, 0)["victims"], [2, 1], "worker 0 victims")
    eq(worker(d, 0)["victim_levels"], ["core", "numa"], "worker 0 levels")
    d = topo_json("--synthetic", "core:2 pu:1", "--workers", "3")
    eq(worker(d, 2)["pu_os_index"], None, "unbound worker")
    eq(worker(d, 2)["victim_levels"], ["unbound", "unbound"], "unbound labels")
    eq(worker(d, 0)["victim_levels"], ["numa", "unbound"], "unbound last")


@case("--workers 0 means one per core")
def _():
    d = topo_json("--synthetic", "core:3 pu:2", "--workers", "0")
    eq(d["plan"]["worker_count"], 3, "workers")


@case("XML topology: distances and the asymmetric plan")
def _():
    d = topo_json("--xml", os.path.join(TOPOS, "asymmetric.xml"))
    eq(d["source"]["kind"], "xml", "kind")
    eq(d["numa_distances"], [[10, 16, 22, 28], [16, 10, 22, 28],
                             [22, 22, 10, 16], [28, 28, 16, 10]], "distances")
    d2 = topo_json("--xml", os.path.join(TOPOS, "numa-bw-lat.xml"))
    eq(d2["numa_distances"][0], [10, 20, 12, 30], "latency, though bandwidth comes first")
    eq(d2["numa_bandwidth"][0], [90000, 30000, 60000, 10000], "bandwidth, shown")
    eq(worker(d2, 0)["victims"], [1, 4, 5, 2, 3, 6, 7], "latency order")
    rc, out, err = run("topo", "--xml", os.path.join(TOPOS, "numa-bw-lat.xml"))
    assert "NUMA bandwidth (hwloc's NUMABandwidth, MB/s): shown, never used" in out, out
    assert "NUMA latency (hwloc's NUMALatency, 10 = local)" in out, out
    eq(len(d["pus"]), 10, "PUs")
    eq(d["plan"]["worker_count"], 5, "workers")
    eq(worker(d, 0)["victims"], [1, 2, 3, 4], "worker 0 victims")
    eq(worker(d, 4)["victim_levels"], ["remote"] * 4, "worker 4 levels")
    eq(d["caches"][0]["level"], 3, "cache level")
    eq(d["caches"][0]["instances"], 4, "L3 instances (one without cores)")


@case("HWLOC_SYNTHETIC and HWLOC_XMLFILE are honoured")
def _():
    d = topo_json(env={"HWLOC_SYNTHETIC": "pack:3 core:1 pu:1"})
    eq(d["source"]["kind"], "synthetic", "kind")
    eq(d["plan"]["worker_count"], 3, "workers")
    d = topo_json(env={"HWLOC_XMLFILE": os.path.join(TOPOS, "distances.xml")})
    eq(d["source"]["kind"], "xml", "kind")
    eq(worker(d, 0)["victims"], [1, 4, 5, 2, 3, 6, 7], "distance order")
    # an explicit flag wins
    d = topo_json("--synthetic", "core:2 pu:1", env={"HWLOC_SYNTHETIC": "core:7 pu:1"})
    eq(d["plan"]["worker_count"], 2, "workers")


@case("native JSON describes this machine")
def _():
    d = topo_json()
    eq(d["source"]["kind"], "native", "kind")
    eq(d["source"]["this_system"], True, "this_system")
    eq(len(d["pus"]) + len(d["excluded_pus"]), os.cpu_count(), "PUs")
    eq(len(d["pus"]), len(os.sched_getaffinity(0)), "PUs this process may use")
    cores = len({p["core"] for p in d["pus"]})
    eq(d["plan"]["worker_count"], cores, "one worker per core")
    if os.uname().machine == "x86_64":
        assert d["cpu"]["identified"], "cpu identified"
        assert d["cpu"]["vendor"], "vendor"
        assert "sse4.2" in d["cpu"]["features"] or not d["cpu"]["features"], d["cpu"]["features"]


@case("native text report")
def _():
    rc, out, err = run("topo")
    eq(rc, 0, "status")
    for s in ("CPU (this machine, libcpuid)", "codename", "Caches", "Topology:", "Plan:"):
        assert s in out, "missing %r" % s


@case("--latency measures every pair and checks the steal order")
def _():
    d = topo_json("--latency")
    lat = d["latency"]
    n = len(d["pus"])
    eq(len(lat["pus"]), n, "PUs measured")
    eq(len(lat["round_trip_ns"]), n, "rows")
    for i in range(n):
        eq(lat["round_trip_ns"][i][i], 0.0, "diagonal")
        for j in range(n):
            if i != j:  # each direction on its own
                assert lat["min_ns"][i][j] <= lat["round_trip_ns"][i][j] <= lat["max_ns"][i][j], (i, j)
                assert lat["min_ns"][i][j] > 0, "positive"
    eq(lat["directions_measured"], n * (n - 1), "every direction")
    assert 0 <= lat["spread_median"] <= lat["spread_worst"], lat
    levels = {r for w in d["plan"]["workers"] for r in w["victim_ranks"]}
    if len(levels) < 2:  # one level: nothing to compare
        eq(lat["steal_order"], "not checkable", "verdict")
    else:
        assert lat["steal_order"] in ("agrees", "disagrees"), lat["steal_order"]
    eq(lat["steal_order"] == "disagrees", bool(lat["disagreements"]), "verdict matches the list")
    rc, out, err = run("topo", "--latency")
    eq(rc, 0, "status")
    assert "Core-to-core round trip" in out, "matrix header"
    assert "Spread of a direction's runs" in out, "spread"
    assert ("Steal order: not checkable" in out if len(levels) < 2
            else ("Steal order agrees" in out or "Steal order disagrees" in out)), out[-400:]


@case("under taskset: one CPU, one worker, the rest excluded with the reason")
def _():
    if shutil.which("taskset") is None or os.cpu_count() < 2:
        raise Skip("no taskset, or one CPU")
    p = subprocess.run(["taskset", "-c", "0", SHOAL, "topo", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    eq(p.returncode, 0, "status")
    d = json.loads(p.stdout)
    eq([w["pu_os_index"] for w in d["plan"]["workers"]], [0], "one worker on PU 0")
    eq({e["reason"] for e in d["excluded_pus"]}, {"binding"}, "reason")
    eq(len(d["pus"]), 1, "PUs shown")
    p = subprocess.run(["taskset", "-c", "0", SHOAL, "topo", "--whole-system"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode()
    assert "Not used: P#" in out and "(not allowed to this process)" in out, out
    p = subprocess.run(["taskset", "-c", "0", SHOAL, "topo"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert "Excluded: P#" in p.stdout.decode(), p.stdout.decode()


@case("--help and --version")
def _():
    rc, out, err = run("topo", "--help")
    eq(rc, 0, "status")
    assert out.startswith("usage: shoal topo"), out[:40]
    rc, out, err = run("--version")
    eq(rc, 0, "status")
    assert out.startswith("shoal "), out


def bad(name, args, needle, env=None):
    @case("bad input: " + name)
    def _():
        rc, out, err = run(*args, env=env)
        eq(rc, 2, "status")
        eq(err.count("\n"), 1, "one stderr line (%r)" % err)
        assert needle in err, "%r not in %r" % (needle, err)


tmp = tempfile.TemporaryDirectory()
stress_html = []  # the short run's report, for the browser check
stress_json = []  # and its JSON, for --compare
garbage = os.path.join(tmp.name, "garbage.xml")
with open(garbage, "w") as f:
    f.write("this is not xml\n")
unreadable = os.path.join(tmp.name, "noperm.xml")
with open(unreadable, "w") as f:
    f.write("<topology/>")
os.chmod(unreadable, 0)

bad("unknown flag", ["topo", "--frobnicate"], "unknown option '--frobnicate'")
bad("unknown short flag", ["topo", "-z"], "unknown option '-z'")
bad("unknown command", ["frobnicate"], "unknown command 'frobnicate'")
bad("malformed synthetic", ["topo", "--synthetic", "pack:x core"], "malformed synthetic topology 'pack:x core'")
bad("empty synthetic", ["topo", "--synthetic", ""], "malformed synthetic topology")
bad("synthetic machine too large", ["topo", "--synthetic", "pack:1 numa:344444444 pu:5"], "has more than 2048 objects at one level")
# hwloc reads arities as strtoull does (base 0): hex and octal count too
bad("synthetic machine too large, in hex", ["topo", "--synthetic", "0x7262"], "has more than 2048 objects at one level")
bad("synthetic machine too large, in octal", ["topo", "--synthetic", "pack:2 core:04000"], "has more than 2048 objects at one level")
bad("synthetic machine too large, two arities run together", ["topo", "--synthetic", "024048"], "has more than 2048 objects at one level")
bad("missing XML", ["topo", "--xml", "/nonexistent/t.xml"], "cannot read topology file '/nonexistent/t.xml'")
bad("invalid XML", ["topo", "--xml", garbage], "is not an hwloc XML topology")
bad("truncated XML", ["topo", "--xml", os.path.join(TOPOS, "invalid.xml")], "is not an hwloc XML topology")
if os.geteuid() != 0:  # root reads the file anyway
    bad("unreadable XML", ["topo", "--xml", unreadable], "cannot read topology file")
for name, why in (("pu-huge", "PU os_index 4294967294 past"),
                  ("pu-duplicate", "a second PU with os_index 0"),
                  ("no-numa", "no NUMA node"),
                  ("distances-short", "indexes and 15 values")):
    bad("damaged XML: " + name, ["topo", "--xml", os.path.join(TOPOS, name + ".xml")], why)
bad("XML path is a directory", ["topo", "--xml", TOPOS], "Is a directory")
bad("workers not a number", ["topo", "--workers", "abc"], "--workers wants a whole number")
bad("workers negative", ["topo", "--workers", "-1"], "not '-1'")
bad("workers above the limit", ["topo", "--workers", "1025"], "from 0 to 1024")
bad("workers trailing junk", ["topo", "--workers", "4x"], "not '4x'")
bad("workers empty", ["topo", "--workers="], "--workers wants")
bad("workers missing value", ["topo", "--workers"], "option '--workers' needs a value")
bad("synthetic and XML", ["topo", "--synthetic", "core:2 pu:1", "--xml", garbage], "exclude each other")
bad("latency on a synthetic machine", ["topo", "--latency", "--synthetic", "core:2 pu:1"], "--latency measures this machine")
bad("extra argument", ["topo", "extra"], "unexpected argument 'extra'")
bad("malformed HWLOC_SYNTHETIC", ["topo"], "malformed synthetic topology 'zzz'", env={"HWLOC_SYNTHETIC": "zzz"})


def closed_pipe(name, args):
    @case("bad input: %s to a closed pipe" % name)
    def _():
        r, w = os.pipe()
        os.close(r)
        try:
            rc, _, err = run(*args, stdout=w)
        finally:
            os.close(w)
        eq(rc, 2, "status")
        eq(err.count("\n"), 1, "one stderr line (%r)" % err)
        assert "cannot write output" in err, err


closed_pipe("JSON", ["topo", "--json", "--synthetic", SYN])
closed_pipe("text", ["topo", "--synthetic", SYN])


# ---- shoal stress -----------------------------------------------------------

# The largest tick budget: the verdict then rests on the invariants, never
# on how fast a loaded machine ticks (the budget's own cases set theirs).
STRESS = ["stress", "--sessions", "500", "--duration", "2", "--pace", "max",
          "--state-kib", "16", "--budget-ms", "60000"]


@case("stress: a short run passes its invariants; JSON, Prometheus, HTML and trace are written")
def _():
    d = tempfile.mkdtemp(dir=tmp.name)
    paths = {k: os.path.join(d, "out." + k) for k in ("json", "prom", "html", "trace")}
    rc, out, err = run(*STRESS, "--json", paths["json"], "--prometheus", paths["prom"],
                       "--html", paths["html"], "--trace", paths["trace"])
    eq(rc, 0, "status (stdout: %s, stderr: %s)" % (out[-600:], err.strip()))
    assert "verdict: PASS" in out, out
    with open(paths["json"]) as f:
        j = json.load(f)
    for key in ("verdict", "sessions", "ticks", "budget_ms", "tick_ms",
                "overhead_ns_per_session", "packets", "economy",
                "order_violations", "hibernated_max", "wake_failures", "rss"):
        assert key in j, "JSON lacks %s" % key
    eq(j["verdict"], "PASS", "verdict")
    eq(j["sessions"], 500, "sessions")
    eq(j["ticks"], 40, "ticks")
    for key in ("p50", "p99", "p999", "max"):
        assert j["tick_ms"][key] > 0, key
    p = j["packets"]
    assert p["sent"] > 1000, p
    eq(p["sent"], p["handled"] + p["pending"] + p["rejected"] + p["dropped"], "packets accounted for")
    eq(p["dropped"], p["dropped_by_reason"]["rate_limited"], "only the rate limits drop")
    eq(p["rate_limited_not_flooder"], 0, "only the flooder is limited")
    eq(p["limits_why"], "", "limits' why")
    pl = j["payloads"]
    eq(pl["taken"], pl["freed"], "every payload freed")
    assert pl["taken"] > 0 and pl["largest_bytes"] > 96, pl
    eq(pl["heard"], pl["deliveries"], "every broadcast delivery handled")
    assert pl["broadcasts"] > 0 and pl["bytes_per_s"] > 0, pl
    eq(pl["damaged"], 0, "payload bodies intact")
    eq(j["checks"]["payloads"], True, "payloads check")
    eq(j["checks"]["limits"], True, "limits check")
    eq(p["inplace"] + p["map"] + p["main"], p["handled"], "classes are run totals")
    assert p["map"] > 0 and p["main_thread_share"] <= 0.20, p
    mp = j["maps"]
    eq(mp["maps"], 8, "maps")
    eq(mp["owner_violations"], 0, "map owner violations")
    eq(mp["spells"], p["by_category"]["spell"], "the maps' spells")
    eq(mp["loots"], p["by_category"]["loot"], "the maps' loots")
    eq(j["checks"]["maps"], True, "maps check")
    eq(sum(p["by_category"].values()), p["handled"], "categories are run totals")
    m = j["messaging"]
    rq = m["requests"]
    assert m["auction_replies"] > 0, m
    eq(rq["requests"], m["auction_requests"], "requests")
    eq(rq["pending"] + rq["dropped"] + rq["late"], 0, "requests unanswered")
    eq(rq["replies"] + rq["timeouts"], rq["requests"], "every request answered once")
    eq(rq["timeouts"], m["auction_ignored"], "a timeout for each ask ignored")
    eq(m["why"], "", "messaging's why")
    t = j["timers"]
    eq(j["checks"]["timers"], True, "timers check")
    eq(t["started"], t["quests_started"] + t["buffs_applied"], "timers started")
    eq(t["fired"], t["quests_due"] + t["buffs_expired"], "timers fired")
    eq(t["cancelled"], t["quests_abandoned"], "timers cancelled")
    assert t["buffs_applied"] > 0 and t["quests_started"] > 0, t
    e = j["economy"]
    for key in ("gold_before", "gold_after", "items_before", "items_after"):
        assert key in e, key
    eq(e["gold_after"] + e["gold_to_auction"], e["gold_before"] + e["gold_looted"], "gold conserved")
    eq(e["items_after"], e["items_before"] + e["items_looted"] + e["items_from_auction"] - e["items_used"], "items conserved")
    assert e["trades"] > 0, e
    eq(j["order_violations"], 0, "order violations")
    eq(j["wake_failures"], 0, "wake failures")
    assert j["hibernated_max"] > 0, j["hibernated_max"]
    if os.environ.get("SHOAL_SANITIZED") != "1":  # ASan keeps freed memory
        rss = j["rss"]
        assert rss["record_bytes_per_session"] > 0, rss
        if rss["hibernated_below_resolution"]:
            eq(rss["hibernated_bytes_per_session"], None, "no figure below the resolution")
            assert "hibernated below the measurement's resolution (their records" in out, out
        else:
            assert rss["active_bytes_per_session"] > rss["hibernated_bytes_per_session"] > 0, rss
        assert "hibernated 0 B" not in out, out
    with open(paths["prom"]) as f:
        prom = f.read()
    assert 'shoal_stress_tick_seconds{quantile="0.99"}' in prom, prom[:300]
    assert "shoal_stress_pass 1" in prom, prom[:300]
    assert 'shoal_stress_payloads_total{event="freed"}' in prom, prom[:300]
    assert 'shoal_stress_packets_dropped_total{reason="rate_limited"}' in prom, prom[:300]
    with open(paths["html"]) as f:
        html = f.read()
    assert html.count('<svg class="chart"') == 13 and '<path class="data s0" d="M' in html, html[:300]
    stress_html.append(paths["html"])
    stress_json.append(paths["json"])
    with open(paths["trace"]) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    assert len(events) > 0, "empty trace"


# Runs after the page has loaded: measures what Chromium laid out for each
# chart's marks and appends it to the page as JSON, which --dump-dom prints.
CHART_PROBE = """<script>
(function () {
  var out = [];
  function inside(b, p, slack) {
    return b.x >= p.x - slack && b.y >= p.y - slack &&
           b.x + b.width <= p.x + p.width + slack &&
           b.y + b.height <= p.y + p.height + slack;
  }
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect(), plot = svg.querySelector('rect.plot'),
        p = plot ? plot.getBBox() : null, marks = 0, area = 0, length = 0,
        outside = 0;
    svg.querySelectorAll('path.data, rect.bar, circle.point').forEach(function (el) {
      var b = el.getBBox();
      marks++;
      if (el.tagName === 'rect') area += b.width * b.height;
      if (el.tagName === 'path') length += el.getTotalLength();
      if (el.tagName === 'circle') area += 1;
      if (!p || !inside(b, p, el.tagName === 'circle' ? 4 : 1.5)) outside++;
    });
    out.push({caption: svg.parentNode.querySelector('figcaption').textContent,
              width: box.width, height: box.height, marks: marks,
              area: area, length: length, outside: outside, plot: !!plot,
              ticks: svg.querySelectorAll('text.tick').length,
              legend: svg.querySelectorAll('text.legend, text.unit').length});
  });
  var pre = document.createElement('pre');
  pre.id = 'shoal-charts';
  pre.textContent = JSON.stringify({charts: out,
                                    width: document.documentElement.scrollWidth});
  document.body.appendChild(pre);
})();
</script>"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def draw(browser, page_path, shot=None):
    """The charts as Chromium lays them out at 1280 px, and a screenshot of
    the whole page when shot names a file."""
    with open(page_path) as f:
        page = f.read()
    assert page.count("</body>") == 1, "no </body> in the report"
    probe = os.path.join(tmp.name, "probe.html")
    with open(probe, "w") as f:
        f.write(page.replace("</body>", CHART_PROBE + "</body>"))
    e = dict(os.environ, HOME=tmp.name)  # its profile goes there
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--hide-scrollbars", "--virtual-time-budget=5000",
              "--user-data-dir=" + os.path.join(tmp.name, "chromium")]
    p = subprocess.run(common + ["--window-size=1280,900", "--dump-dom", "file://" + probe],
                       capture_output=True, text=True, env=e, timeout=180)
    eq(p.returncode, 0, "chromium status (stderr: %s)" % p.stderr[-600:])
    m = re.search(r'<pre id="shoal-charts">(.*?)</pre>', p.stdout, re.S)
    assert m, "the probe did not run: %s" % p.stdout[-400:]
    doc = json.loads(html_lib.unescape(m.group(1)))
    if shot is not None:
        p = subprocess.run(common + ["--window-size=1280,%d" % (360 * len(doc["charts"]) + 700),
                                     "--screenshot=" + shot, "file://" + page_path],
                           capture_output=True, text=True, env=e, timeout=180)
        eq(p.returncode, 0, "chromium screenshot (stderr: %s)" % p.stderr[-600:])
        assert os.path.getsize(shot) > 10000, "an empty screenshot"
    return doc


def check_charts(doc, want):
    eq(len(doc["charts"]), want, "charts laid out")
    assert doc["width"] <= 1280, "the page is wider than 1280 px: %s" % doc["width"]
    for c in doc["charts"]:
        what = "%s: %r" % (c["caption"], c)
        assert c["plot"], "no plot area: " + what
        assert c["width"] > 300 and c["height"] > 60, what
        assert c["marks"] > 0, what
        eq(c["outside"], 0, "marks outside their axes: " + what)
        assert c["ticks"] >= 2 and c["legend"] >= 1, "axes without ticks or units: " + what
        assert c["length"] > 0 or c["area"] > 0, what


@case("stress: the HTML report's charts draw in headless Chromium, marks inside their axes")
def _():
    browser = chromium()
    if browser is None:
        raise Skip("chromium is not installed (.ci/run installs Debian's chromium)")
    assert stress_html, "the short stress run wrote no HTML"
    # kept in the build folder for a person to look at
    shot = os.path.join(os.getcwd(), "stress-report.png")
    check_charts(draw(browser, stress_html[0], shot), 13)
    sys.stderr.write("# the report's screenshot: %s\n" % shot)


@case("stress: a failed check says why in the table and the JSON; allowed reorders do not fail")
def _():
    d = tempfile.mkdtemp(dir=tmp.name)
    small, loose, out_json = (os.path.join(d, n) for n in ("ib1.conf", "so0.conf", "r.json"))
    with open(small, "w") as f:
        f.write("SessionMgr.InboxSize = 1\n")
    with open(loose, "w") as f:
        f.write("SessionMgr.StrictPacketOrder = 0\n")
    rc, out, err = run(*STRESS, "--config", small, "--json", out_json)
    with open(out_json) as f:
        m = json.load(f)["messaging"]
    if m["requests"]["dropped"] > 0:  # a full inbox refused an answer
        eq(rc, 1, "status")
        assert "full inbox (SessionMgr.InboxSize 1)" in out, out[-800:]
        assert "full inbox" in m["why"], m
    rc, out, err = run(*STRESS, "--config", loose, "--json", out_json)
    eq(rc, 0, "status with StrictPacketOrder = 0 (%s)" % out[-600:])
    assert "reorders (allowed: StrictPacketOrder = 0)  [ok]" in out, out[-800:]
    with open(out_json) as f:
        j = json.load(f)
    eq(j["strict_packet_order"], False, "strict_packet_order")
    eq(j["checks"]["order"], True, "order check")


def compare(a, b, *extra):
    rc, out, err = run("stress", "--compare", a, b, *extra)
    return rc, out, err


def report(doc, name):
    path = os.path.join(tmp.name, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


@case("stress --compare: a report against itself, a worse one, an older one, a failed one")
def _():
    if not stress_json:
        raise Skip("the short run did not write its JSON")
    a = stress_json[0]
    rc, out, err = compare(a, a)
    eq(rc, 0, "itself: status (stderr: %s)" % err.strip())
    assert "no regression beyond 10 %" in out and "REGRESSION" not in out, out
    assert re.search(r"tick p99 \(ms\) +[\d.]+ +[\d.]+ +=", out), out
    with open(a) as f:
        doc = json.load(f)
    worse = json.loads(json.dumps(doc))
    worse["tick_ms"]["p99"] = doc["tick_ms"]["p99"] * 2 + 1
    worse["overhead_ns_per_session"] = doc["overhead_ns_per_session"] * 0.5
    b = report(worse, "worse.json")
    rc, out, err = compare(a, b)
    eq(rc, 1, "worse: status (stderr: %s)" % err.strip())
    assert re.search(r"tick p99 \(ms\) .*\+\d+\.\d % +REGRESSION", out), out
    assert re.search(r"shoal overhead \(ns/update\) .*-50\.0 % +better", out), out
    assert "1 regression beyond 10 %: tick p99 (ms)" in out, out
    rc, out, err = compare(a, b, "--tolerance", "1000")
    eq(rc, 0, "worse within a wide tolerance: status")
    # an older report: fields it did not have are shown, not compared
    old = json.loads(json.dumps(doc))
    del old["headroom_ms"], old["rss"], old["checks"]["timers"]
    c = report(old, "old.json")
    rc, out, err = compare(c, a)
    eq(rc, 0, "older: status (stderr: %s)" % err.strip())
    assert re.search(r"headroom \(ms\) +- +[\d.]+ +not in A", out), out
    assert re.search(r"check timers +- +holds", out), out
    failed = json.loads(json.dumps(doc))
    failed["verdict"] = "FAIL"
    failed["checks"]["order"] = False
    d = report(failed, "failed.json")
    rc, out, err = compare(a, d)
    eq(rc, 1, "failed: status")
    assert "2 regressions beyond 10 %: verdict, check order" in out, out
    # setups that differ are said
    other = json.loads(json.dumps(doc))
    other["sessions"] = doc["sessions"] + 1
    rc, out, err = compare(a, report(other, "other.json"))
    assert re.search(r"sessions +\d+ +\d+ +differs", out), out
    assert "the runs' setups differ" in out, out


FIND = ["stress", "--find-max", "--pace", "max", "--step-seconds", "1", "--state-kib", "4"]


@case("stress --find-max: a small budget gives a capacity, its curve and its limit")
def _():
    path = os.path.join(tmp.name, "find.json")
    # 100 µs of work per bot against 100 ms: about 2000 bots on 2 free
    # cores, fewer when other tests take one; 250 pass either way
    page = os.path.join(tmp.name, "find.html")
    rc, out, err = run(*FIND, "--budget-ms", "100", "--work-us", "100", "--max-seconds", "60",
                       "--json", path, "--html", page)
    eq(rc, 0, "status (stdout: %s, stderr: %s)" % (out[-800:], err[-800:]))
    with open(path) as f:
        j = json.load(f)
    c = j["capacity"]
    steps = c["steps"]
    eq([s["sessions"] for s in steps], sorted(s["sessions"] for s in steps), "steps sorted")
    assert len(steps) >= 3, steps
    assert 250 <= c["sessions"] < c["ceiling"], c
    passed = [s for s in steps if s["pass"]]
    failed = [s for s in steps if not s["pass"]]
    assert failed, "no step failed under a 100 ms budget: %s" % steps
    eq(max(s["sessions"] for s in passed), c["sessions"], "the capacity is the largest pass")
    assert min(s["sessions"] for s in failed) > c["sessions"], steps
    # monotonic enough to bisect: the tick grows with the population
    assert steps[-1]["tick_p99_ms"] > steps[0]["tick_p99_ms"], steps
    for s in failed:
        assert s["why"] != "", s
    eq(j["sessions"], c["sessions"], "the report is the capacity step's")
    eq(j["verdict"], "PASS", "the capacity step passed")
    assert c["limit"] in ("worker CPU", "the main thread's drain", "the biggest map's phase",
                          "memory"), c["limit"]
    assert "capacity search: " in out and "capacity: %d sessions" % c["sessions"] in out, out[-600:]
    assert "step 1: 250 sessions" in err, err[:400]
    with open(page) as f:
        html = f.read()
    assert "<h2>Capacity</h2>" in html and ("<b>%d sessions</b>" % c["sessions"]) in html, html[:600]
    browser = chromium()
    if browser is not None:  # the curve's two charts before the run's 13
        check_charts(draw(browser, page), 15)


@case("stress --find-max: a budget nothing meets gives status 1; a ceiling reached is said")
def _():
    rc, out, err = run(*FIND, "--budget-ms", "1", "--work-us", "400", "--max-seconds", "30")
    eq(rc, 1, "status (stderr: %s)" % err[-400:])
    assert "capacity: none — even the smallest step (250 sessions) failed" in out, out[-400:]
    # the largest budget, so that no stall of a loaded machine decides it
    rc, out, err = run(*FIND, "--sessions", "300", "--budget-ms", "60000", "--max-seconds", "60")
    eq(rc, 0, "status (stderr: %s)" % err[-400:])
    assert "capacity: 300 sessions" in out and "set by --sessions" in out, out[-400:]
    assert "the ceiling asked for (--sessions)" in out, out[-400:]


@case("stress: every output that fails to be written gives status 2")
def _():
    if not os.path.exists("/dev/full"):
        raise Skip("no /dev/full")
    for flag in ("--trace", "--json", "--prometheus", "--html"):
        rc, out, err = run("stress", "--sessions", "100", "--duration", "1",
                           "--pace", "max", "--state-kib", "1", flag, "/dev/full")
        eq(rc, 2, "%s /dev/full: status (stderr: %s)" % (flag, err.strip()))
        assert "cannot write /dev/full" in err, err


@case("stress: a tick budget the run cannot meet gives FAIL and status 1")
def _():
    rc, out, err = run("stress", "--sessions", "200", "--duration", "1",
                       "--pace", "max", "--work-us", "200", "--budget-ms", "1",
                       "--state-kib", "4")
    eq(rc, 1, "status (stderr: %s)" % err.strip())
    assert "verdict: FAIL" in out and "over the 1 ms budget" in out, out[-400:]


badcfg = os.path.join(tmp.name, "bad.conf")
with open(badcfg, "w") as f:
    f.write("[SessionMgr]\nUpdateBatchSize = lots\n")
smallcfg = os.path.join(tmp.name, "small.conf")
with open(smallcfg, "w") as f:
    f.write("SessionMgr.PoolPreallocate = 50\nSessionMgr.MaxConcurrentSessions = 100\n")
notjson = os.path.join(tmp.name, "not.json")
with open(notjson, "w") as f:
    f.write('{"verdict": "PASS", ')
notreport = os.path.join(tmp.name, "notreport.json")
with open(notreport, "w") as f:
    f.write('{"sessions": 5}')
bad("stress --compare: a missing file", ["stress", "--compare", os.path.join(tmp.name, "none.json"), notreport],
    "unable to open")
bad("stress --compare: malformed JSON", ["stress", "--compare", notjson, notreport], "not.json:1:")
bad("stress --compare: not a report", ["stress", "--compare", notreport, notreport],
    "is not a shoal stress report (no verdict)")
bad("stress --compare: one report", ["stress", "--compare", notreport], "--compare wants two reports")
bad("stress --compare: with a run's options", ["stress", "--sessions", "10", "--compare", notreport, notreport],
    "--compare runs nothing")
bad("stress --compare: a bad tolerance", ["stress", "--compare", notreport, notreport, "--tolerance", "-1"],
    "--tolerance wants a whole number in 0")
bad("stress --find-max: with --duration", ["stress", "--find-max", "--duration", "5"],
    "--find-max runs many short runs")
bad("stress --find-max: with --trace", ["stress", "--find-max", "--trace", "t.json"],
    "--find-max runs many short runs")
bad("stress --find-max: a step of 0 s", ["stress", "--find-max", "--step-seconds", "0"],
    "--step-seconds wants a whole number in 1")
bad("stress --find-max: a bound under 10 s", ["stress", "--find-max", "--max-seconds", "5"],
    "--max-seconds wants a whole number in 10")
bad("stress: --step-seconds without --find-max", ["stress", "--step-seconds", "3"],
    "--step-seconds and --max-seconds go with --find-max")
bad("stress: zero sessions", ["stress", "--sessions", "0"], "--sessions wants a whole number in 1")
bad("stress: zero maps", ["stress", "--maps", "0"], "--maps wants a whole number in 1")
bad("stress: sessions above the configured maximum", ["stress", "--sessions", "200", "--config", smallcfg],
    "--sessions 200 is above SessionMgr.MaxConcurrentSessions (100)")
bad("stress: sessions above the default maximum", ["stress", "--sessions", "6000"],
    "is above SessionMgr.MaxConcurrentSessions (5000)")
bad("stress: bad pace", ["stress", "--pace", "fast"], "--pace is realtime or max, not 'fast'")
bad("stress: bad config file", ["stress", "--config", badcfg], "UpdateBatchSize")
bad("stress: missing config file", ["stress", "--config", "/nonexistent/shoal.conf"], "/nonexistent/shoal.conf")
bad("stress: config is a directory", ["stress", "--config", tmp.name], "not a regular file (a directory)")
bad("stress: config is a device", ["stress", "--config", "/dev/zero"], "not a regular file (a device)")
bad("stress: unknown flag", ["stress", "--frobnicate"], "unknown option '--frobnicate'")
bad("stress: unwritable JSON", ["stress", "--json", "/nonexistent/dir/r.json"], "cannot write /nonexistent/dir/r.json")
bad("stress: tps not a number", ["stress", "--tps", "x"], "--tps wants a whole number")

finish()
