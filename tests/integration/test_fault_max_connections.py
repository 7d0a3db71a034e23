"""test_fault_max_connections.py: another client takes every PostgreSQL
connection slot while the workers need one.

The stack behind nginx (3 workers), under wrk load on /json from start to
end.  Then:

  1. the workers are stopped (SIGSTOP) and their backends terminated
     (pg_terminate_backend): a running worker sees its connection end on
     its idle socket and connects again at once, and would take a freed
     slot back before the other client could;
  2. another client (a raw protocol client in this file, application_name
     tfb-test-hog) opens connections until PostgreSQL refuses one with
     SQLSTATE 53300 (too many connections): every slot of max_connections
     is then taken, the reserved ones too (the stack's role is a superuser,
     as TechEmpower's is);
  3. the workers continued (SIGCONT): each sees its connection ended,
     connects again at once, is refused, and backs off; wrk load on every
     database route for 3 s: every answer is a 200 or the app's 503 with
     a short body, and some are 503; nothing dropped, nothing hung;
  4. the other client closes its connections: within 5 s (the backoff's
     2 s ceiling plus slack) a round of requests on every database route
     answers 200, then 1 s of wrk load answers 200 only; the same worker
     processes, one PostgreSQL connection each.

/json (no database) is under load from start to end: stopped workers
hold its requests a moment, and it answers 200 only.

Skipped when PGHOST is set: the test would terminate connections on, and
fill, a PostgreSQL it does not own.
"""

import os
import signal
import socket
import struct
import time

from ..kit import APP_NAME, stack
from ..kit.cmd import wait_for
from ..kit.scene import DB_PATHS, Scene
from ..kit.tap import main

HOLD = 3
MAX_HOG = 2000  # connections the other client tries at most


class Hog:
    """The other client: holds PostgreSQL connections, opened with the
    protocol's StartupMessage over the unix socket (trust authentication,
    as the stack's cluster has), until the server refuses one."""

    def __init__(self, pg):
        self.path = os.path.join(pg["PGHOST"], ".s.PGSQL.%s" % pg.get("PGPORT", "5432"))
        self.user = pg.get("PGUSER", "benchmarkdbuser")
        self.db = pg.get("PGDATABASE", "hello_world")
        self.held = []
        self.refusal = None  # (SQLSTATE, message) of the refusal

    def connect(self):
        """One connection: the socket once it is ready for queries, or
        None with self.refusal set."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(self.path)
            kv = [("user", self.user), ("database", self.db),
                  ("application_name", "tfb-test-hog")]
            body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in kv) + b"\0"
            s.sendall(struct.pack("!ii", 8 + len(body), 3 << 16) + body)
            f = s.makefile("rb")
            while True:
                head = f.read(5)
                if len(head) < 5:
                    self.refusal = ("EOF", "the server closed the connection")
                    break
                kind, n = head[:1], struct.unpack("!i", head[1:])[0]
                msg = f.read(n - 4)
                if kind == b"Z":  # ReadyForQuery
                    return s
                if kind == b"E":  # ErrorResponse: fields "<code><text>\0"
                    fields = {x[:1]: x[1:].decode(errors="replace")
                              for x in msg.split(b"\0") if x}
                    self.refusal = (fields.get(b"C", "?"), fields.get(b"M", "?"))
                    break
        except OSError as e:
            self.refusal = ("OSError", str(e))
        s.close()
        return None

    def fill(self):
        while len(self.held) < MAX_HOG:
            s = self.connect()
            if s is None:
                break
            self.held.append(s)
        return len(self.held)

    def release(self):
        for s in self.held:
            try:
                s.sendall(b"X\0\0\0\4")  # Terminate
            except OSError:
                pass
            s.close()
        self.held = []


def body(tap):
    stack.own_pg(tap, "max_connections exhausted")
    label = "max_connections exhausted by another client"
    with Scene(tap, "max-conns", stack={}) as sc:
        st = sc.st
        hog = Hog(st.pg_env())
        try:
            bg = sc.load(["/json"], seconds=HOLD + 5)
            pids = st.worker_pids()
            try:
                for p in pids:
                    os.kill(p, signal.SIGSTOP)
                n = st.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = '%s'" % APP_NAME)
                gone = wait_for(lambda: st.app_connections() == 0, 10, 0.1)
                tap.check(len(pids) == sc.workers and n == str(sc.workers) and gone,
                          "the %d workers stopped, their backends terminated" % sc.workers,
                          "workers %s, terminated %s" % (pids, n))
                held = hog.fill()
            finally:
                for p in pids:
                    os.kill(p, signal.SIGCONT)
            tap.check(hog.refusal and hog.refusal[0] == "53300" and held > 0,
                      "another client holds every slot: %d connections, then refused "
                      "with 53300" % held, "refusal: %s" % (hog.refusal,))
            tap.note("refused with %s" % (hog.refusal,))
            load = sc.load(DB_PATHS, seconds=HOLD + 2)
            time.sleep(HOLD)
        finally:
            hog.release()
        sc.check_outage(label, load, time.monotonic())
        # /json needs no database: 200 only, throughout.
        sc.check_answers("%s, /json meanwhile" % label, bg.result(), allow=())


if __name__ == "__main__":
    main(body, deadline=120)
