"""test_fault_client_abort.py: clients that go away in the middle.

The stack behind nginx (3 workers), under wrk load from well-behaved
clients on every database route and /json.  Meanwhile, for about 3 s:

  * HTTP clients through nginx that go away: right after sending their
    request, a few milliseconds into it (while the worker computes
    /queries?queries=500 or writes /updates?queries=500), or after the
    first bytes of the answer with a small receive buffer, each closing
    with a reset; and clients that send a request and never read;
  * the same seen from the pool's side, straight on its FastCGI socket,
    as nginx does it when its client went away (nginx then closes its
    connection to the worker, answer or not): a request sent and the
    connection closed before the answer, on a new connection, and on a
    kept one (FCGI_KEEP_CONN) after a first request answered, 1000 times
    in all: more than the workers' connection tables hold (3 x 256), so
    that a table that kept an entry for each would stop its worker from
    accepting.

Checked: the well-behaved clients get 200 for every request, without a
drop or a hang; a new FastCGI connection is still answered at once; no
line at level error in the pool's log (a client going away is a warning:
it is the client's doing, not a fault of ours); the same worker processes
with one PostgreSQL connection each; then 1 s of wrk load answers 200 only.
"""

import multiprocessing
import queue
import random
import socket
import struct
import threading
import time

from ..kit import fcgi
from ..kit.scene import DB_PATHS, Scene
from ..kit.tap import main

HTTP_PATHS = ["/queries?queries=500", "/updates?queries=500", "/fortunes",
              "/cached-queries?count=500", "/db"]
FCGI_ABORTS = 1000
SECONDS = 3.0
LINGER_RESET = struct.pack("ii", 1, 0)  # close() sends a reset


def http_aborts(port, seconds, results):
    """Clients that go away, each in one of three ways, for seconds; the
    count of each way goes to results (a queue: this runs in a process of
    its own, so that it does not hold the interpreter's lock from the
    FastCGI clients)."""
    counts = {}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        path = HTTP_PATHS[i % len(HTTP_PATHS)]
        how = ("at once", "while computing", "mid-answer")[i % 3]
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
            if how == "while computing":
                time.sleep(random.random() * 0.01)
            elif how == "mid-answer":
                s.recv(64)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            s.close()
            key = how
        except OSError as e:
            key = "error: %s" % e
        counts[key] = counts.get(key, 0) + 1
    results.put(counts)


def slow_readers(port, n, hold):
    """n clients that send a request for a large answer and read nothing
    for hold seconds: nginx buffers the answer, so no worker waits on them."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.sendall(b"GET /queries?queries=500 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        socks.append(s)
    time.sleep(hold)
    for s in socks:
        s.close()
    return len(socks)


def fcgi_aborts(sock_path, n):
    """The front server's side: requests whose connection is closed
    before the answer, on new connections and on kept ones.  Returns
    (counts, what went wrong): a first request that finds no worker to
    answer it within 5 s is a pool that stopped accepting."""
    counts = {"new connection": 0, "kept connection": 0}
    for i in range(n):
        try:
            with fcgi.connect(sock_path, timeout=5) as c:
                if i % 4 == 0:
                    c.send(fcgi.whole("/db", flags=fcgi.KEEP_CONN))
                    counts["new connection"] += 1
                else:
                    first = c.get("/json", keep=True)
                    if first.status != 200:
                        return counts, "request %d: a first request answered %r" % (i, first)
                    # An answer that fits libfcgi's buffer, written at the
                    # end of the request, once the connection is gone.
                    c.send(fcgi.whole("/queries?queries=20", flags=fcgi.KEEP_CONN))
                    counts["kept connection"] += 1
        except OSError as e:
            return counts, "request %d: %s: %s" % (i, type(e).__name__, e)
    return counts, None


def body(tap):
    label = "clients that go away"
    with Scene(tap, "client-abort", stack={}) as sc:
        st = sc.st
        sock_path = st.run_path("fcgi.sock")
        if not tap.check(sock_path, "the pool's FastCGI socket is in VAR/run"):
            return
        log_before = len(sc.st.app_log())
        load = sc.load(DB_PATHS + ["/json"], seconds=int(SECONDS) + 3)
        time.sleep(0.5)
        results = multiprocessing.Queue()
        aborters = [multiprocessing.Process(target=http_aborts,
                                            args=(st.port, SECONDS, results),
                                            daemon=True)
                    for _ in range(2)]
        for p in aborters:
            p.start()
        slow = [0]
        reader = threading.Thread(
            target=lambda: slow.__setitem__(0, slow_readers(st.port, 32, SECONDS)))
        reader.start()
        t0 = time.monotonic()
        fcounts, why = fcgi_aborts(sock_path, FCGI_ABORTS)
        took = time.monotonic() - t0
        counts = {}
        for p in aborters:
            try:
                for k, n in results.get(timeout=SECONDS + 30).items():
                    counts[k] = counts.get(k, 0) + n
            except queue.Empty:
                counts["error: no count"] = 1
            p.join(10)
        reader.join(30)
        tap.note("HTTP clients gone: %s; slow readers: %d" % (counts, slow[0]))
        tap.note("FastCGI connections closed before the answer: %s in %.1f s"
                 % (fcounts, took))
        tap.check(sum(n for k, n in counts.items() if not k.startswith("error")) > 100
                  and not [k for k in counts if k.startswith("error")],
                  "%s: HTTP clients reset their connection at once, while the "
                  "answer is computed, and mid-answer (%d)" % (label, sum(counts.values())),
                  str(counts))
        tap.check(why is None and sum(fcounts.values()) == FCGI_ABORTS,
                  "%s: %d FastCGI requests closed before their answer, on new and "
                  "kept connections, and the pool accepted every new connection"
                  % (label, FCGI_ABORTS), [str(why), str(fcounts)])
        t0 = time.monotonic()
        try:
            with fcgi.connect(sock_path, timeout=5) as c:
                r = c.get("/json")
        except OSError as e:
            r = e
        took = time.monotonic() - t0
        tap.check(isinstance(r, fcgi.Response) and r.status == 200 and took < 1,
                  "%s: then a new FastCGI connection is answered at once (%.3f s)"
                  % (label, took), repr(r))
        # The others are not affected: 200 only.
        sc.check_answers("%s, the other clients meanwhile" % label, load.result(), allow=())
        errors = [ln for ln in sc.st.app_log()[log_before:].splitlines() if " error: " in ln]
        tap.check(not errors, "%s: no error in the pool's log (%d lines at level error)"
                  % (label, len(errors)), errors[:6])
        sc.wait_recovery(label, time.monotonic(), 2.0)
        sc.check_after(label)


if __name__ == "__main__":
    main(body, deadline=120)
