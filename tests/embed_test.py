#!/usr/bin/env python3
"""embed_test.py - shoal as a host embeds it: the example host shut down by
a signal and refusing bad flags, then the library installed into a staging
folder and two consumers built outside the tree with
`pkg-config --cflags --libs shoal` and run against it. Prints TAP.

Arguments: the example host, the build folder, the source folder."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from tap import case, eq, finish

HOST, BUILD, SOURCE = sys.argv[1:4]


@case("SIGINT stops the example host cleanly, everything accounted for")
def _():
    p = subprocess.Popen([HOST, "--sessions", "200", "--ticks", "1000000",
                          "--workers", "3"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # printed once its signal handler is set
    assert first.startswith("host: running"), "first line %r" % first
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    eq(p.returncode, 0, "status (stdout %r, stderr %r)" % (out, err))
    assert out.rstrip().endswith("OK"), out
    assert "pending 0" in out and "0 order violations" in out, out


@case("the example host's console: actors status, queue, trace, workers, and bad commands")
def _():
    cmds = ("actors status\nactors queue auction\nactors trace 1\nbogus\n"
            "workers 1\nworkers 9999\nworkers x\nworkers 2\n")
    p = subprocess.run([HOST, "--sessions", "100", "--ticks", "20",
                        "--console", "stdin"], input=cmds, capture_output=True,
                       text=True, timeout=120)
    eq(p.returncode, 0, "status (stdout %r, stderr %r)" % (p.stdout, p.stderr))
    out = p.stdout
    for want in ("console: > actors status", "handled", "failures",
                 "console: > actors queue auction", "when full",
                 "back-pressure", "console: trace 1: ",
                 "unknown command 'bogus'", "bids accepted",
                 "workers: 1 now (was ", "console: workers 9999: ",
                 "console: workers x: ", "workers: 2 now (was 1, console)"):
        assert want in out, "%r not in %r" % (want, out[-2000:])
    # the traced bid: sent by the main thread, then run on a worker
    hops = [l for l in out.splitlines() if l.startswith("console: ") and
            (" send " in l or " run " in l)]
    assert len(hops) >= 2 and " send " in hops[0] and " run " in hops[1], hops


@case("the example host refuses bad flags with status 2")
def _():
    for args in (["--sessions", "0"], ["--ticks", "-3"], ["--ticks"],
                 ["--bogus"], ["--config", "/nonexistent/shoal.conf"],
                 ["--console", "tty"], ["--console"]):
        p = subprocess.run([HOST, *args], capture_output=True, text=True,
                           timeout=60)
        eq(p.returncode, 2, "status of %s (stderr %r)" % (args, p.stderr))
        assert p.stderr.strip() != "", "no message for %s" % args


def pkg_env(dest):
    pcdir = None
    for root, _dirs, files in os.walk(dest):
        if "shoal.pc" in files:
            pcdir = root
    assert pcdir is not None, "no shoal.pc installed under %s" % dest
    env = dict(os.environ)
    # a staged install: pkg-config puts the staging folder before its paths
    env["PKG_CONFIG_SYSROOT_DIR"] = dest
    env["PKG_CONFIG_PATH"] = pcdir
    return env, os.path.dirname(pcdir)


def stage(tmp):
    """meson install into tmp/stage: pkg-config's environment for it, and
    the folder of the staged libshoal."""
    dest = os.path.join(tmp, "stage")
    p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest,
                        "--no-rebuild", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    eq(p.returncode, 0, "meson install (%s)" % p.stderr.strip())
    return pkg_env(dest)


@case("consumers built outside the tree with pkg-config run on the installed library")
def _():
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None, "no C compiler"
    with tempfile.TemporaryDirectory() as tmp:
        env, libdir = stage(tmp)
        p = subprocess.run(["pkg-config", "--cflags", "--libs", "shoal"],
                           capture_output=True, text=True, env=env)
        eq(p.returncode, 0, "pkg-config (%s)" % p.stderr.strip())
        flags = p.stdout.split()
        assert "-lshoal" in flags, flags
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        for name, args, want in (("plan", [], "worker 0:"),
                                 ("host", ["--sessions", "100", "--ticks", "10"],
                                  "OK"),
                                 ("migrate", ["--sessions", "50", "--seconds", "1",
                                              "--every-ms", "200"],
                                  "every packet accounted for")):
            src = os.path.join(SOURCE, "examples", name + ".c")
            exe = os.path.join(tmp, name)
            # copied out of the tree, so that only the installed header serves
            local = os.path.join(tmp, name + ".c")
            shutil.copy(src, local)
            p = subprocess.run([cc, "-std=c11", "-pthread", local, "-o", exe,
                                *flags], capture_output=True, text=True,
                               cwd=tmp)
            eq(p.returncode, 0, "building %s: %s" % (name, p.stderr.strip()))
            p = subprocess.run(["ldd", exe], capture_output=True, text=True,
                               env=run_env)
            line = [l for l in p.stdout.splitlines() if "libshoal" in l]
            assert line and libdir in line[0], "%s links %r" % (name, line)
            p = subprocess.run([exe, *args], capture_output=True, text=True,
                               env=run_env, timeout=120)
            eq(p.returncode, 0, "%s status (stderr %r)" % (name, p.stderr))
            assert want in p.stdout, "%s printed %r" % (name, p.stdout)


MALLOC_HOST = r"""
#include <shoal.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  shoal_config c;
  void *p = malloc(100);
  shoal_config_defaults(&c);
  printf("%u\n", c.max_sessions);
  free(p);
  return p == NULL;
}
"""


def malloc_binding(exe, env):
    """Which library the executable's own `malloc` binds to at run time."""
    env = dict(env, LD_DEBUG="bindings")
    p = subprocess.run([exe], capture_output=True, text=True, env=env, timeout=60)
    eq(p.returncode, 0, "%s status (%s)" % (exe, p.stderr[-300:]))
    for line in p.stderr.splitlines():
        if ("binding file %s " % exe) in line and "symbol `malloc'" in line:
            return line.split(" to ")[1].split()[0]
    raise AssertionError("no malloc binding for %s" % exe)


@case("a host's malloc: glibc's in the documented dynamic link, mimalloc's in the static one")
def _():
    cc = shutil.which("cc") or shutil.which("gcc")
    with tempfile.TemporaryDirectory() as tmp:
        env, libdir = stage(tmp)
        src = os.path.join(tmp, "m.c")
        with open(src, "w") as f:
            f.write(MALLOC_HOST)
        cflags = subprocess.run(["pkg-config", "--cflags", "shoal"], env=env,
                                capture_output=True, text=True).stdout.split()
        libs = subprocess.run(["pkg-config", "--libs", "shoal"], env=env,
                              capture_output=True, text=True).stdout.split()
        p = subprocess.run(["pkg-config", "--static", "--libs", "shoal"], env=env,
                           capture_output=True, text=True)
        eq(p.returncode, 0, "pkg-config --static (%s)" % p.stderr.strip())
        static = ["-l:libshoal.a" if f == "-lshoal" else f for f in p.stdout.split()]
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        dyn, sta = os.path.join(tmp, "m_dyn"), os.path.join(tmp, "m_static")
        p = subprocess.run([cc, src, "-o", dyn, *cflags, *libs],
                           capture_output=True, text=True)
        eq(p.returncode, 0, "dynamic link: %s" % p.stderr.strip())
        assert "libc.so" in malloc_binding(dyn, run_env), "dynamic link"
        p = subprocess.run([cc, src, "-o", sta, *cflags, *static],
                           capture_output=True, text=True)
        eq(p.returncode, 0, "static link: %s" % p.stderr.strip())
        want = "libmimalloc" if "-lmimalloc" in static else "libc.so"
        got = malloc_binding(sta, os.environ)
        assert want in got, "static link: malloc binds to %s, not %s" % (got, want)


finish()
