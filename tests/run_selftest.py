"""run_selftest.py: the harness held to its word.

tests/run, the counter of every check, is given programs that lie about
their checks, one at a time, and must fail the run for each, counting it
as a failure; and honest ones, which must pass with the counts they
printed.  Each program is a few lines of shell in a temporary directory.
Then a program that waits for a file after its first check shows that
tests/run passes each line on as it comes: the file is made only once
that line has come out of tests/run.

And the tests package's imports, read from its sources: the kit imports
no test module, integration/ and bench/ never import each other, and no
module imports itself through others.  make test runs this with the unit
tests.
"""

import ast
import os
import re
import subprocess
import tempfile
import time

from .kit import REPO, tap as taplib
from .kit.cmd import tail

RUN = REPO / "tests" / "run"

# (name, shell body, whether tests/run must pass it, passed, failed, skipped)
CASES = [
    ("good, the plan first", "echo 1..3; echo ok 1 - a; echo ok 2 - b; echo ok 3 - c",
     True, 3, 0, 0),
    ("good, the plan last, a skip", "echo ok 1 - a; echo 'ok 2 - b # SKIP not root'; "
     "echo '# a note'; echo 1..2", True, 1, 0, 1),
    ("truncated: 1..5, three oks, exit 0", "echo 1..5; echo ok 1 - a; echo ok 2 - b; "
     "echo ok 3 - c; exit 0", False, 3, 1, 0),
    ("more checks than planned", "echo 1..2; echo ok 1 - a; echo ok 2 - b; echo ok 3 - c",
     False, 3, 1, 0),
    ("no plan", "echo ok 1 - a; echo ok 2 - b", False, 2, 1, 0),
    ("no check at all, exit 0", "echo '# nothing to see'; exit 0", False, 0, 1, 0),
    ("no check, a plan of 1..0", "echo 1..0", False, 0, 1, 0),
    ("all ok, but exits 3", "echo 1..2; echo ok 1 - a; echo ok 2 - b; exit 3",
     False, 2, 1, 0),
    ("a not ok", "echo 1..2; echo ok 1 - a; echo 'not ok 2 - b'; exit 1", False, 1, 1, 0),
    ("a not ok, exit 0", "echo 1..2; echo ok 1 - a; echo 'not ok 2 - b'", False, 1, 1, 0),
    ("two plans", "echo 1..1; echo ok 1 - a; echo 1..1", False, 1, 1, 0),
    ("the plan in the middle", "echo ok 1 - a; echo 1..2; echo ok 2 - b", False, 2, 1, 0),
    ("Bail out!", "echo 'Bail out! no binary'; exit 2", False, 0, 1, 0),
]


def run(progs, env=None):
    """tests/run PROG... with the integration tests left out."""
    return subprocess.run([str(RUN)] + progs, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, UNIT_ONLY="1", **(env or {})),
                          stdin=subprocess.DEVNULL)


def program(tmp, name, body):
    path = os.path.join(tmp, re.sub(r"\W+", "-", name).strip("-"))
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)
    return path


def check_case(tap, tmp, case):
    name, body, good, p, f, s = case
    r = run([program(tmp, name, body)])
    last = (r.stdout.strip().splitlines() or [""])[-1]
    want = "%d passed, %d failed, %d skipped" % (p, f, s)
    tap.check((r.returncode == 0) == good and last == want,
              "%s: tests/run %s (%s)" % (name, "passes" if good else "fails", want),
              ["exit %s, last line %r" % (r.returncode, last)] + tail(r.stdout, 8))


def check_streaming(tap, tmp):
    """The first check must come out of tests/run while the program still
    runs: the program waits (at most 20 s) for a file that is made only
    once that line is read from tests/run's output."""
    flag = os.path.join(tmp, "seen")
    prog = program(tmp, "waits", "echo 1..2; echo ok 1 - first\n"
                   "i=0; while [ ! -e %s ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\n"
                   "[ -e %s ] && echo ok 2 - second" % (flag, flag))
    p = subprocess.Popen([str(RUN), prog], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, UNIT_ONLY="1"), stdin=subprocess.DEVNULL)
    t0 = time.monotonic()
    seen = None
    for line in p.stdout:
        if line.startswith("ok 1 - first"):
            seen = time.monotonic() - t0
            open(flag, "w").close()
            break
    rest = p.communicate(timeout=30)[0]
    tap.check(seen is not None and p.returncode == 0 and "ok 2 - second" in rest,
              "tests/run shows a check as it comes, before its program ends "
              "(the first line after %s s)" % (seen if seen is None else "%.2f" % seen),
              tail(rest, 6))


def imports():
    """{module: {modules of the tests package it imports}}, from the
    sources ("tests.kit.stack": {"tests.kit", "tests.kit.fcgi", ...})."""
    root = REPO / "tests"
    graph = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        pkg = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        name = ".".join(parts if parts[-1] != "__init__" else parts[:-1])
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg[:len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                deps.add(mod)
                deps.update(mod + "." + a.name for a in node.names
                            if (root.parent / (mod + "." + a.name).replace(".", "/")
                                ).with_suffix(".py").exists())
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                deps.update(m for m in mods if m.split(".")[0] == "tests")
        graph[name] = deps - {name}
    return graph


def circle(graph):
    """A list of modules that import each other in a circle, or []."""
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                return path[path.index(d):] + [d] if d in path else [m, d]
            if d in graph and d not in state:
                found = visit(d, path + [d])
                if found:
                    return found
        state[m] = "done"
        return []

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return []


def check_imports(tap):
    graph = imports()
    up = ["%s imports %s" % (m, d) for m, ds in sorted(graph.items()) for d in sorted(ds)
          if m.startswith("tests.kit") and not d.startswith("tests.kit")]
    tap.check(len(graph) > 40 and not up, "the kit (%d modules) imports no test module"
              % sum(1 for m in graph if m.startswith("tests.kit")), up)
    across = ["%s imports %s" % (m, d) for m, ds in sorted(graph.items()) for d in sorted(ds)
              for a, b in (("integration", "bench"), ("bench", "integration"))
              if m.startswith("tests." + a) and d.startswith("tests." + b)]
    tap.check(not across, "integration/ and bench/ import the kit, never each other", across)
    found = circle(graph)
    tap.check(not found, "no circle in the tests package's imports (%d modules)"
              % len(graph), " -> ".join(found))
    # The check can fail: a circle made up is found.
    tap.check(circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"],
              "and a circle a -> b -> c -> a would be found")


def body(tap):
    check_imports(tap)
    with tempfile.TemporaryDirectory(prefix="tfb-test-run-") as tmp:
        for case in CASES:
            check_case(tap, tmp, case)
        # Several programs: their counts add up, one liar fails the run.
        progs = [program(tmp, c[0], c[1]) for c in CASES[:3]]
        r = run(progs)
        tap.check(r.returncode != 0 and r.stdout.rstrip().endswith(
            "7 passed, 1 failed, 1 skipped") and "# failing: " + progs[2] in r.stdout,
                  "three programs, one truncated: the counts add up, the run fails and "
                  "names it", tail(r.stdout, 4))
        check_streaming(tap, tmp)


if __name__ == "__main__":
    taplib.main(body, deadline=120)
