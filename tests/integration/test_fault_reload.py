"""test_fault_reload.py: the front server reloaded under load, nginx
(`nginx -s reload`) and lighttpd (SIGUSR1, its graceful restart, which is
what Debian 12's lighttpd.service runs as ExecReload), each in a stack of
its own (3 workers).

Two wrk loads at once on every database route and /json, for 4 s, with
two reloads 1.5 s apart: one keeps its connections (keep-alive, 16
connections), the other opens a connection per request (Connection:
close, 16 connections), as clients without keep-alive do.

  every answer of both is a 200: a reload never answers an error;
  one request per connection: no connection is dropped, none hangs: the
  old server answers what it accepted, the listening socket stays open
  throughout and the new one takes what queued meanwhile;
  keep-alive: a few connections are dropped, at most one per connection
  per reload (measured over two reloads of 16 connections, about 10,000
  requests: 0 to 7 with nginx, 0 to 14 with lighttpd).  Both close the kept connections that wait for their next
  request when the old workers (nginx) or the old configuration
  (lighttpd) leave; a request the client sent just then arrives on a
  connection being closed, and wrk, unlike a browser, does not send it
  again.  lighttpd 1.4.69 closes every such connection at once
  (connection_graceful_shutdown_maint), nginx only those idle at that
  instant, hence the difference.  RFC 9112 9.3.1 leaves the retry of such
  a request to the client; nothing in the server's configuration avoids
  it;
  the reload happened (nginx: the same master, new worker processes;
  lighttpd: the same process, its log says it restarted), the pool never
  noticed (the same workers, one PostgreSQL connection each), and 1 s of
  wrk load afterwards answers 200 only.
"""

import os
import signal
import time

from ..kit import proc
from ..kit.cmd import run, tail
from ..kit.scene import DB_PATHS, Scene
from ..kit.tap import main

RELOADS = 2
CONNECTIONS = 16
PATHS = DB_PATHS + ["/json"]


def reload_nginx(st):
    """nginx -s reload, with the stack's prefix and configuration."""
    var = os.path.realpath(st.var)
    r = run(["nginx", "-p", var + "/", "-c", var + "/conf/nginx.conf",
                 "-e", var + "/log/nginx.error.log", "-s", "reload"], 30)
    return r.returncode == 0, r.stdout


def reload_lighttpd(st):
    """SIGUSR1 to lighttpd: `systemctl reload lighttpd` on Debian 12."""
    pids = st.front_pids()
    if not pids:
        return False, "no lighttpd pid file"
    os.kill(pids[0], signal.SIGUSR1)
    return True, ""


def front_log(st, server):
    for d in st.var_dirs():
        try:
            with open(os.path.join(d, "log", "%s.error.log" % server), errors="replace") as f:
                return f.read()
        except OSError:
            continue
    return ""


def scene(tap, server, reload):
    label = "%s reloaded under load" % server
    with Scene(tap, "reload-" + server, stack=dict(server=server)) as sc:
        st = sc.st
        master = st.front_pids()
        front0 = sorted(proc.descendants(master[0])) if master else []
        log0 = front_log(st, server)
        kept = sc.load(PATHS, seconds=4, connections=CONNECTIONS)
        one = sc.load(PATHS, seconds=4, connections=CONNECTIONS, close=True)
        time.sleep(1)
        for k in range(RELOADS):
            ok, out = reload(st)
            tap.check(ok, "%s: reload %d" % (server, k + 1), tail(out, 5))
            time.sleep(1.5)
        since = time.monotonic()
        sc.wait_recovery(label, since, 2.0, PATHS)

        # Never an error status: a reload is no fault of the service.
        sc.check_answers("%s, a connection per request" % label, one.result(),
                         drops=0, allow=())
        sc.check_answers("%s, keep-alive" % label, kept.result(),
                         drops=CONNECTIONS * RELOADS, allow=())

        now = st.front_pids()
        if server == "nginx":
            kids = sorted(proc.descendants(now[0])) if now else []
            tap.check(now == master and kids and not set(kids) & set(front0),
                      "nginx: the same master, new worker processes",
                      ["master %s -> %s, workers %s -> %s" % (master, now, front0, kids)])
        else:
            text = front_log(st, server)[len(log0):]
            tap.check(now == master and text.count("graceful shutdown started") == RELOADS
                      and text.count("server started") == RELOADS,
                      "lighttpd: the same process, restarted %d times (its log)" % RELOADS,
                      ["pid %s -> %s" % (master, now)] + tail(text, 8))
        sc.check_after(label, PATHS)


def body(tap):
    scene(tap, "nginx", reload_nginx)
    scene(tap, "lighttpd", reload_lighttpd)


if __name__ == "__main__":
    main(body, deadline=150)
