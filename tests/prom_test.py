#!/usr/bin/env python3
"""prom_test.py - shoal's metrics with Prometheus' own tools: the
exposition of `shoal stress --prometheus` and of the live `--listen`
endpoint pass `promtool check metrics`; the endpoint answers while the run
goes on (and 404, 405 and 400 where it should) and closes with it; bad
--listen values give status 2; and a real Prometheus server scraping a run
stores the tick histogram and the session gauge, read back through its
HTTP API. promtool and prometheus come from Debian's prometheus package
(.ci/run installs it); where it is missing those cases are skipped with
the reason. Prints TAP for meson."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from tap import Skip, case, eq, finish

SHOAL = sys.argv[1]
# The largest tick budget: these cases test the exposition, and a stall of
# a loaded machine must not turn a run's verdict into their failure.
RUN = ["stress", "--sessions", "300", "--state-kib", "4", "--tps", "20",
       "--budget-ms", "60000"]
tmp = tempfile.TemporaryDirectory()


def promtool_check(text, what):
    tool = shutil.which("promtool")
    if tool is None:
        raise Skip("promtool is not installed (.ci/run installs Debian's "
                   "prometheus)")
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode()
    eq(p.returncode, 0, "promtool check metrics on %s: %s" % (what, out))
    # promtool prints lint findings (names, units, HELP) with status 0 too
    eq(out.strip(), "", "promtool's findings on %s" % what)


class Live:
    """A `shoal stress --listen 127.0.0.1:0` run in the background."""

    def __init__(self, seconds, *extra):
        self.p = subprocess.Popen(
            [SHOAL, *RUN, "--duration", str(seconds), "--listen",
             "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.p.stderr.readline().decode()
        m = re.search(r"metrics at http://127\.0\.0\.1:(\d+)/metrics", line)
        assert m is not None, "no address on stderr: %r" % line
        self.port = int(m.group(1))
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, path="/metrics", method="GET"):
        req = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode()

    def finish(self):
        out, err = self.p.communicate(timeout=240)
        return self.p.returncode, out.decode(), err.decode()


@case("stress --prometheus: the file passes promtool, the library's families in it")
def _():
    path = os.path.join(tmp.name, "final.prom")
    p = subprocess.run([SHOAL, *RUN, "--duration", "2", "--pace", "max",
                        "--prometheus", path], capture_output=True, timeout=240)
    eq(p.returncode, 0, "status (stderr: %s)" % p.stderr.decode().strip())
    with open(path) as f:
        text = f.read()
    for family in ("shoal_stress_pass", "shoal_tick_duration_seconds_bucket",
                   "shoal_sessions", "shoal_packets_handled_total",
                   "shoal_worker_busy_seconds_total", "shoal_actor_messages_total",
                   "shoal_map_sessions", "shoal_session_requests_total"):
        assert family in text, "no %s in the file" % family
    promtool_check(text, "the --prometheus file")


@case("stress --listen: answers while the run goes on, promtool passes, closes with the run")
def _():
    live = Live(4)
    try:
        status, ctype, body = live.get()
        eq(status, 200, "GET /metrics")
        eq(ctype, "text/plain; version=0.0.4; charset=utf-8", "content type")
        m = re.search(r"^shoal_ticks_total (\d+)$", body, re.M)
        assert m is not None, body[:400]
        first = int(m.group(1))
        time.sleep(1.0)
        status, _, body2 = live.get()
        eq(status, 200, "second GET")
        second = int(re.search(r"^shoal_ticks_total (\d+)$", body2, re.M).group(1))
        assert second > first, "ticks did not advance: %d then %d" % (first, second)
        eq(live.get("/")[0], 404, "GET /")
        eq(live.get("/metrics", "POST")[0], 405, "POST /metrics")
        eq(live.get("/metrics", "HEAD")[0], 200, "HEAD /metrics")
        with socket.create_connection(("127.0.0.1", live.port), timeout=5) as s:
            s.sendall(b"nonsense\r\n\r\n")
            eq(s.recv(64).split(b"\r\n")[0], b"HTTP/1.1 400 Bad Request", "bad request")
    finally:
        rc, out, err = live.finish()
    eq(rc, 0, "status (stdout: %s, stderr: %s)" % (out[-400:], err.strip()))
    try:
        socket.create_connection(("127.0.0.1", live.port), timeout=2).close()
        assert False, "the endpoint still answers after the run"
    except OSError:
        pass
    promtool_check(body2, "the live endpoint")


def bad_listen(value, why):
    p = subprocess.run([SHOAL, *RUN, "--duration", "1", "--listen", value],
                       capture_output=True, timeout=120)
    err = p.stderr.decode()
    eq(p.returncode, 2, "--listen %s: status (stderr: %s)" % (value, err.strip()))
    assert why in err, err
    eq(len(err.strip().splitlines()), 1, "one line on stderr")


@case("stress --listen: a bad address or a port in use gives status 2")
def _():
    bad_listen("127.0.0.1:99999", "--listen wants HOST:PORT with a port in 0")
    bad_listen("127.0.0.1:http", "--listen wants HOST:PORT")
    bad_listen("127.0.0.1:", "--listen wants HOST:PORT")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        bad_listen("127.0.0.1:%d" % s.getsockname()[1], "Address already in use")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port, query):
    url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(query))
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    eq(doc["status"], "success", "query %s" % query)
    return doc["data"]["result"]


@case("a real Prometheus server scrapes a run: the tick histogram and the session gauge")
def _():
    server = shutil.which("prometheus")
    if server is None:
        raise Skip("prometheus is not installed (.ci/run installs Debian's prometheus)")
    live = Live(25)
    port = free_port()
    d = tempfile.mkdtemp(dir=tmp.name)
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: shoal\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % live.port)
    prom = subprocess.Popen(
        [server, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "data"),
         "--web.listen-address=127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
    try:
        deadline = time.monotonic() + 20
        scrapes = 0
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                r = api(port, 'count_over_time(up{job="shoal"}[1m])')
            except (urllib.error.URLError, ConnectionError):
                continue  # not up yet
            scrapes = int(float(r[0]["value"][1])) if r else 0
            if scrapes >= 2:
                break
        assert scrapes >= 2, "%d scrapes in 20 s; log: %s" % (
            scrapes, open(os.path.join(d, "log")).read()[-800:])
        eq(api(port, 'up{job="shoal"}')[0]["value"][1], "1", "target up")
        buckets = api(port, "shoal_tick_duration_seconds_bucket")
        les = sorted(b["metric"]["le"] for b in buckets)
        assert "+Inf" in les and len(les) >= 10, les
        inf = [b for b in buckets if b["metric"]["le"] == "+Inf"][0]
        assert float(inf["value"][1]) > 0, inf
        sessions = api(port, 'shoal_sessions{state="active"}')
        assert sessions and 0 < float(sessions[0]["value"][1]) <= 300, sessions
        q = api(port, "histogram_quantile(0.99, shoal_tick_duration_seconds_bucket)")
        assert q and float(q[0]["value"][1]) > 0, q
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
        live.p.kill()
        live.finish()


finish()
