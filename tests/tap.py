"""tap.py - the TAP reporting the Python tests share: @case(name) runs a
check and records it (an AssertionError or any exception fails it, Skip
skips it), eq() says both values, finish() prints TAP and exits."""
import sys

results = []


class Skip(Exception):
    """Raised by a case that cannot run here; reported as TAP # SKIP."""


def case(name):
    def wrap(fn):
        try:
            fn()
            results.append((True, name, ""))
        except Skip as ex:
            results.append((True, name + " # SKIP " + str(ex), ""))
        except AssertionError as ex:
            results.append((False, name, str(ex)))
        except Exception as ex:  # a crash of the test itself fails it too
            results.append((False, name, "%s: %s" % (type(ex).__name__, ex)))
        return fn
    return wrap


def eq(got, want, what):
    assert got == want, "%s: got %r, want %r" % (what, got, want)


def finish():
    print("1..%d" % len(results))
    for i, (ok, name, why) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            for line in why.splitlines():
                print("# " + line)
    sys.exit(0 if all(ok for ok, _, _ in results) else 1)
