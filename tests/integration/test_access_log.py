"""test_access_log.py: the workers' access log (tfb-fcgi --access-log).

The stack (nginx, WORKERS=2) started with APP_ARGS="--access-log
VAR/log/access.log":
  * a line per request, in the Common Log Format's order with the phases
    in microseconds: 5 /plaintext (200, 13 bytes, no database time), 3 /db
    (database time > 0), a HEAD (0 bytes), a 404 whose query holds double
    quotes (escaped, the line still parses);
  * written within a second of the last request with nothing else
    happening (the buffer is flushed by time, not only when full);
  * the file moved aside and SIGUSR1 sent to each worker: the next lines
    go to a new file at the path, none to the old one;
  * at `deploy/stack stop` the lines still buffered are written.
Then --access-log /dev/full (every write fails with ENOSPC): every request
still answered 200, the log says the lines are dropped.  And tfb-fcgi
refuses --access-log with --timing off (exit 2), whose phases it would not
have.
"""

import os
import re
import signal
import tempfile
import time

from ..kit import APP_BIN, SPAWN_BIN, STACK, web
from ..kit.cmd import run, tail, wait_for
from ..kit.stack import Stack, StackError
from ..kit.tap import main

WORKERS = 2
LINE = re.compile(r'^- - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "(\S+) ((?:[^"\\]|\\.)*)" '
                  r'(\d{3}) (\d+) read_us=(\d+) db_us=(\d+) app_us=(\d+) write_us=(\d+) '
                  r'total_us=(\d+)$')


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def parsed(lines):
    """(entries, bad lines): each entry a dict of the line's fields."""
    out, bad = [], []
    for ln in lines:
        m = LINE.match(ln)
        if not m:
            bad.append(ln)
            continue
        g = m.groups()
        out.append({"method": g[1], "target": g[2], "status": int(g[3]), "bytes": int(g[4]),
                    "us": [int(x) for x in g[5:9]], "total": int(g[9])})
    return out, bad


def send_mix(st):
    """The requests of the first check; their count."""
    n = 0
    for path, k in (("/plaintext", 5), ("/db", 3)):
        n += len(web.batch(st.url(path), k))
    r = web.request("HEAD", st.url("/json"))
    n += 1
    raw = web.raw_exchange(st.port, b'GET /nope?q="x" HTTP/1.1\r\nHost: localhost\r\n'
                           b"Connection: close\r\n\r\n")
    n += 1
    return n, r, raw


def check_lines(tap, st, path):
    # deploy/stack's own /plaintext, at its start, first.
    base = len(wait_for(lambda: read_lines(path), 2, step=0.05) or [])
    n, head, raw = send_mix(st)
    t0 = time.monotonic()
    lines = wait_for(lambda: (lambda x: x if len(x) >= base + n else None)(read_lines(path)),
                     3, step=0.05) or read_lines(path)
    took = time.monotonic() - t0
    lines = lines[base:]
    tap.check(base == 1 and len(lines) == n and took < 1.6,
              "%d requests: %d lines in %s (after deploy/stack's own), written %.2f s "
              "after the last one (the buffer goes out each second)"
              % (n, len(lines), path, took), lines[-5:])
    es, bad = parsed(lines)
    tap.check(not bad, "every line in the format: - - - [time] \"METHOD target\" status bytes "
              "read_us db_us app_us write_us total_us", bad[:4])
    plain = [e for e in es if e["target"] == "/plaintext"]
    db = [e for e in es if e["target"] == "/db"]
    tap.check(len(plain) == 5 and all(e["status"] == 200 and e["bytes"] == 13 and
                                      e["us"][1] == 0 and e["total"] == sum(e["us"])
                                      for e in plain),
              "/plaintext: 200, 13 bytes, no database time, the phases add up to the total",
              [str(e) for e in plain])
    tap.check(len(db) == 3 and all(e["status"] == 200 and e["us"][1] > 0 for e in db),
              "/db: 200, time in the database (%s us)" % [e["us"][1] for e in db],
              [str(e) for e in db])
    heads = [e for e in es if e["method"] == "HEAD"]
    tap.check(head.status == 200 and len(heads) == 1 and heads[0]["bytes"] == 0 and
              heads[0]["target"] == "/json",
              "HEAD /json: logged with 0 bytes of body", [str(e) for e in heads])
    nope = [ln for ln in lines if "/nope" in ln]
    tap.check(len(nope) == 1 and '"GET /nope?q=\\"x\\"" 404 ' in nope[0],
              "a 404 whose query holds double quotes: escaped, the line whole",
              nope + [raw[:200] if isinstance(raw, (bytes, str)) else str(raw)])


def check_reopen(tap, st, path):
    old = path + ".1"
    os.rename(path, old)
    pids = st.worker_pids()
    for p in pids:
        os.kill(p, signal.SIGUSR1)
    time.sleep(0.5)
    web.batch(st.url("/json"), 4)
    new = wait_for(lambda: (lambda x: x if len(x) >= 4 else None)(read_lines(path)), 3,
                   step=0.05) or read_lines(path)
    tap.check(len(new) == 4 and all('"GET /json" 200' in ln for ln in new) and
              not [ln for ln in read_lines(old) if "/json\" 200 " in ln and
                   '"GET /json"' in ln and "HEAD" not in ln],
              "moved aside, SIGUSR1 to each worker (%s): the next 4 lines in a new file "
              "at the path, none in the old" % pids, new + read_lines(old)[-3:])
    web.batch(st.url("/plaintext"), 3)
    return len(new)


def on_stack(tap):
    st = Stack(server="nginx", workers=WORKERS, name="access", tap=tap)
    path = os.path.join(st.var, "log", "access.log")
    st.app_args = "--access-log " + path
    try:
        st.start()
        err = ""
    except StackError as e:
        err = str(e)
    if not tap.check(not err, "deploy/stack start with APP_ARGS=\"%s\"" % st.app_args, err):
        st.cleanup()
        return
    try:
        check_lines(tap, st, path)
        before = check_reopen(tap, st, path)
        st.stop()
        final = read_lines(path)
        tap.check(len(final) == before + 3 and all("/plaintext" in ln for ln in final[-3:]),
                  "deploy/stack stop right after 3 requests: their lines written at exit",
                  final[-4:])
    finally:
        st.cleanup()


def on_full_disk(tap):
    st = Stack(server="nginx", workers=WORKERS, name="access-full", tap=tap,
               app_args="--access-log /dev/full")
    try:
        st.start()
        rs = web.batch(st.url("/plaintext"), 20)
        time.sleep(1.3)
        rs += web.batch(st.url("/plaintext"), 4)
        log = ""
        for d in st.var_dirs():
            p = os.path.join(d, "log", "app.log")
            if os.path.exists(p):
                log = open(p, errors="replace").read()
        tap.check(all(r.status == 200 for r in rs) and len(rs) == 24 and
                  "access log /dev/full: cannot write (No space left on device): dropping"
                  in log,
                  "--access-log /dev/full (a full disk): 24 requests answered 200, the "
                  "log says its lines are dropped",
                  [str(sorted({r.status for r in rs}))] + tail(log, 5))
    except StackError as e:
        tap.fail("deploy/stack start with APP_ARGS=--access-log /dev/full", str(e))
    finally:
        st.cleanup()


def check_timing_off(tap):
    with tempfile.TemporaryDirectory(prefix="tfb-test-access-") as d:
        r = run([APP_BIN, "--bind", os.path.join(d, "s.sock"), "--access-log",
                 os.path.join(d, "a.log"), "--timing", "off"], 10)
        tap.check(r.returncode == 2 and "--access-log needs --timing on" in r.stdout,
                  "tfb-fcgi --access-log with --timing off: exit 2, saying why",
                  ["exit %s" % r.returncode] + tail(r.stdout, 3))


def body(tap):
    tap.need([APP_BIN, SPAWN_BIN, STACK])
    check_timing_off(tap)
    on_stack(tap)
    on_full_disk(tap)


if __name__ == "__main__":
    main(body, deadline=180)
