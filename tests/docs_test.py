#!/usr/bin/env python3
"""docs_test.py - the documentation against the library it describes: the
embedding guide's error-code and configuration tables (names, texts,
defaults, ranges) through libshoal itself, and the CLI reference's usage
texts against `shoal ... --help`. Prints TAP.

Arguments: libshoal.so, the shoal executable, the docs folder."""
import ctypes
import os
import re
import subprocess
import sys

from tap import case, eq, finish

LIB, SHOAL, DOCS = sys.argv[1:4]
lib = ctypes.CDLL(LIB)
lib.shoal_strerror.restype = ctypes.c_char_p
lib.shoal_err_name.restype = ctypes.c_char_p
lib.shoal_config_key_name.restype = ctypes.c_char_p
lib.shoal_config_key_count.restype = ctypes.c_uint
lib.shoal_config_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.c_char_p, ctypes.c_char_p,
                                 ctypes.c_size_t]
CFG_BYTES = 8192  # more than sizeof(shoal_config); the rest stays zero
SHOAL_ELIMIT = -5


def table(path, heading):
    """The rows (lists of cells) of the first table under a heading."""
    with open(path) as f:
        text = f.read()
    at = text.index("\n## " + heading + "\n")
    rows = []
    for line in text[at:].splitlines()[2:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows and not line.startswith("|"):
            break
    return rows[1:]  # without the header row


def unquote(cell):
    return cell.strip("`")


def number(text):
    """'2^24' -> 16777216, '2^32−1' -> 4294967295, '1024' -> 1024."""
    m = re.fullmatch(r"(\d+)(?:\^(\d+))?(?:[−-](\d+))?", text.strip())
    assert m, "not a number: %r" % text
    v = int(m.group(1)) ** int(m.group(2)) if m.group(2) else int(m.group(1))
    return v - int(m.group(3) or 0)


def config_after(key=None, value=None):
    buf = ctypes.create_string_buffer(CFG_BYTES)
    err = ctypes.create_string_buffer(256)
    lib.shoal_config_defaults(buf)
    rc = 0
    if key is not None:
        rc = lib.shoal_config_set(buf, key.encode(), value.encode(), err, 256)
    return rc, buf.raw, err.value.decode()


EMBED = os.path.join(DOCS, "embedding.md")


@case("embedding.md: the error table is the library's, every code")
def _():
    rows = table(EMBED, "Error codes")
    assert rows, "no error table"
    for code, name, text, _cause in rows:
        c = int(code)
        eq("SHOAL_" + lib.shoal_err_name(c).decode(), unquote(name), "name of %d" % c)
        eq(lib.shoal_strerror(c).decode(), text, "text of %d" % c)
    codes = sorted(int(r[0]) for r in rows)
    eq(codes, list(range(codes[0], 0)), "codes listed")
    eq(lib.shoal_err_name(codes[0] - 1).decode(), "UNKNOWN", "a code past the table")


@case("embedding.md: the configuration table has every key, its default and its range")
def _():
    rows = table(EMBED, "Configuration keys")
    n = lib.shoal_config_key_count()
    keys = [lib.shoal_config_key_name(i).decode() for i in range(n)]
    eq([unquote(r[0]) for r in rows], keys, "keys in the table")
    _, defaults, _ = config_after()
    for key, default, rng, _what in (r[:4] for r in rows):
        key = unquote(key)
        d = default.split()[0]
        rc, cfg, err = config_after(key, d)
        eq(rc, 0, "%s = %s (%s)" % (key, d, err))
        assert cfg == defaults, "%s: the documented default %s is not the default" % (key, d)
        if rng == "boolean":
            lo, hi = 0, 1
        else:
            m = re.fullmatch(r"(\S+)(?: \([^)]*\))? … (\S+)", rng)
            assert m, "%s: range %r" % (key, rng)
            lo, hi = number(m.group(1)), number(m.group(2))
        for v in (lo, hi):
            rc, _, err = config_after(key, str(v))
            eq(rc, 0, "%s = %d, in its range (%s)" % (key, v, err))
        bad = [hi + 1] + ([lo - 1] if lo > 0 else [])
        for v in bad:
            rc, _, err = config_after(key, str(v))
            assert rc != 0 and err, "%s = %d, out of its range, was accepted" % (key, v)
            if rng != "boolean":
                eq(rc, SHOAL_ELIMIT, "%s = %d" % (key, v))


@case("cli.md: the usage texts are the tool's own")
def _():
    with open(os.path.join(DOCS, "cli.md")) as f:
        doc = f.read()
    for args in (["--help"], ["topo", "--help"], ["stress", "--help"]):
        p = subprocess.run([SHOAL, *args], capture_output=True, text=True, timeout=60)
        eq(p.returncode, 0, "status of %s" % args)
        assert "```text\n" + p.stdout + "```" in doc, \
            "cli.md lacks the text of shoal %s:\n%s" % (" ".join(args), p.stdout)


@case("docs/README.md links every page of docs/")
def _():
    with open(os.path.join(DOCS, "README.md")) as f:
        index = f.read()
    for name in sorted(os.listdir(DOCS)):
        if name.endswith(".md") and name != "README.md":
            assert "(%s" % name in index, "%s is not linked" % name


finish()
