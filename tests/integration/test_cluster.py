"""test_cluster.py: several app hosts behind nginx, reads on a standby.

The deployment of deploy/cluster/README.md, built on this one machine out
of network namespaces (root only):

    client (this process, root namespace)  10.213.N.1
    web    nginx, deploy/cluster/render    10.213.N.10:8080
    app1   tfb-spawn --bind ...:9000       10.213.N.11
    app2   tfb-spawn --bind ...:9000       10.213.N.12
    pg1    PostgreSQL primary              10.213.N.21:5432
    pg2    streaming standby of pg1        10.213.N.22:5432

Each host is a namespace with one interface, eth0, a veth whose other end
is a port of a switch: two Linux bridges in a namespace of their own (sw),
lan for the client, web and app hosts, db for the two databases, joined by
a veth pair.  One segment, one /24, as machines on a LAN: every host
reaches every other directly, nothing routes, and the switch namespace has
no firewall of its own (the root namespace's rules never see the traffic).
A switch rather than cables from each host to nginx's: the app hosts reach
the databases directly, as on a LAN, instead of through a namespace that
would have to route (forwarding, routes) and would make nginx's host a
router.  The ports (8080, 9000, 5432) are each namespace's own: the test
takes none on the machine's loopback.  The two bridges are there so that the cable between the app hosts and the
databases can be swapped for netdelay.c, a user-space wire that delays
every frame (netem is not in this kernel): what a database round trip
across hosts costs.

The app hosts run what a real one runs: FCGI_WEB_SERVER_ADDRS set to
nginx's address, tfb-fcgi with --db listing the standby before the
primary and --db-read listing the primary before the standby, so that
only target_session_attrs (read-write for --db, prefer-standby for
--db-read, the app's defaults) puts each connection where it belongs.

Checks, in order:
  1. the cluster: replication streaming, the standby read-only, the app
     hosts refusing a FastCGI client that is not nginx, both app hosts
     serving;
  2. a 70 KB body, three GET /db and two POST /updates: 413 from nginx
     each, and every app host stays in service (nginx's error log names
     no upstream failed, /db answers 10 of 10);
  3. every route through the cluster's nginx passes the TFB verifier
     replica (tfb_verify.py), the pg_stat_statements counts summed over
     both databases (reads are counted on the standby, /updates on the
     primary);
  4. the reads on the standby: /fortunes' statements counted there, none
     on the primary; each worker's read connection there;
  5. the standby stopped under a read load: every request answered 200,
     the reads now counted on the primary; started again, app1's pool
     rolled (SIGHUP) under a load of every route: no failed request; app2's
     rolled too: the reads back on the standby;
  6. the primary stopped under a load of reads and /updates, twice: with
     SIGSTOP (a primary that stopped answering, for the answer deadline
     and more) and with pg_ctl stop -m fast (2 s, then started again):
     every read answered 200 by the standby, /updates 200 or 503, each
     503 within the answer deadline (5 s; at once when the primary is
     shut down); all 200 again within 2 s of the primary's return; and,
     from an audit trigger on World (a row per write, with its
     transaction), nothing half-written: every 200 /updates is one
     committed transaction of the rows it reported, every transaction
     wrote its 5 rows, those no answer reports are at most the /updates
     answered 503, and every row holds its last write;
  7. the database cable delayed by netdelay.c: the round trip at least
     twice the delay, /db and /queries answered through it; req/s and
     latency with and without the delay, as notes (never asserted);
  8. app1 killed (SIGKILL of every process in its namespace) under a load
     of every route: app2 takes the traffic; only /updates may fail, at
     most as many as the requests in flight; nginx's log shows no
     /updates sent to a second host; the primary counts at least one
     UPDATE per /updates answered 200 and at most one per /updates sent;
  9. everything removed: processes, namespaces, interfaces, files.

Clean-up is done by a keeper process forked at the start (tests/pg.h's
way): it waits on a pipe only this process writes to, and when that pipe
closes, whatever the reason (the end of the test, an exception, a signal,
SIGKILL), stops PostgreSQL, kills every process left in the test's
namespaces, deletes the namespaces and removes the directory.

Knobs: TFB_TEST_WORKERS workers per app host (2); TFB_CLUSTER_DELAYS_US
the one-way delays to measure (500; "" for none); TFB_CLUSTER_MEASURE_S
the seconds of each measurement (2).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ..kit import APP_BIN, APP_NAME, NETDELAY, REPO, SPAWN_BIN, fcgi, proc, stack, verify as tv
from ..kit import netns, web
from ..kit.netns import kill_all, ns_pids, sh
from ..kit.cmd import run, tail, wait_exit
from ..kit.load import Wrk
from ..kit.pg import OS_USER, Cluster as PGCluster, bindir
from ..kit.stack import StackError
from ..kit.tap import in_ci, main
from .freeze import Frozen

PREFIX = "tfbc"
NET = "10.213"
HOSTS = {"client": 1, "web": 10, "app1": 11, "app2": 12, "pg1": 21, "pg2": 22}
LAN = ("web", "app1", "app2")
DB = ("pg1", "pg2")
APPS = ("app1", "app2")
HTTP_PORT, FCGI_PORT, PG_PORT = 8080, 9000, 5432
WORKERS = int(os.environ.get("TFB_TEST_WORKERS", "2"))
DELAYS_US = [int(x) for x in os.environ.get("TFB_CLUSTER_DELAYS_US", "500").split(",")
             if x.strip()]
MEASURE_S = float(os.environ.get("TFB_CLUSTER_MEASURE_S", "2"))
CONCURRENCY = 16  # the load's clients when app1 is killed
APP_USER, APP_DB = "benchmarkdbuser", "hello_world"
RENDER = REPO / "deploy" / "cluster" / "render"
SQL = REPO / "deploy" / "sql"

READS = ["/db", "/queries?queries=3", "/fortunes"]
ALL_ROUTES = ["/db", "/queries?queries=5", "/updates?queries=5", "/fortunes",
              "/cached-queries?count=5", "/json", "/plaintext"]


# --------------------------------------------------------------------------
# The cluster

class Cluster:
    """The namespaces, the switch, the servers, and the keeper that
    removes them.  Raises StackError when a part cannot be made."""

    def __init__(self, tap):
        self.tap = tap
        self.tmp = tempfile.mkdtemp(prefix="tfb-test-cluster-", dir="/tmp")
        os.chmod(self.tmp, 0o755)  # postgres and www-data come through
        self.n = None
        self.keeper_pid = None
        self.keeper_fd = None
        self.pools = {}
        self.wire = None
        self._claim()

    # -- names

    def ns(self, host):
        return "%s%d-%s" % (PREFIX, self.n, host)

    def addr(self, host):
        return "%s.%d.%d" % (NET, self.n, HOSTS[host])

    def url(self, path):
        return "http://%s:%d%s" % (self.addr("web"), HTTP_PORT, path)

    def in_ns(self, host, argv):
        return ["ip", "netns", "exec", self.ns(host)] + [str(a) for a in argv]

    def _claim(self):
        """A subnet 10.213.N.0/24 of our own: the switch namespace's name
        is the lock (ip netns add fails when it exists).  Then the keeper,
        before anything else is made."""
        start = os.getpid() % 250
        for i in range(250):
            n = (start + i) % 250 + 1
            r = run(["ip", "netns", "add", "%s%d-sw" % (PREFIX, n)], 10)
            if r.returncode == 0:
                break
            if re.search(r"permission|not permitted", r.stdout or "", re.I):
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise PermissionError(r.stdout.strip())
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise StackError("no free %s<N>-sw namespace" % PREFIX)
        self.n = n
        # The keeper's first act (kit/netns): PostgreSQL stopped at once,
        # which gives its shared memory back; then the processes left in
        # the namespaces, the namespaces, the cable, the directory.
        with open(os.path.join(self.tmp, "teardown"), "w") as f:
            for host in DB:
                f.write(json.dumps(["runuser", "-u", OS_USER, "--",
                                    str(bindir() / "pg_ctl"), "stop", "-D",
                                    os.path.join(self.tmp, host, "data"), "-m", "immediate",
                                    "-w", "-t", "10", "-s"]) + "\n")
        rfd, wfd = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os.close(wfd)
            netns.keeper(rfd, PREFIX, n, self.tmp)
        os.close(rfd)
        self.keeper_pid, self.keeper_fd = pid, wfd

    def close(self):
        """Let the keeper clean up, and wait for it.  True when it did
        within the time."""
        if self.keeper_fd is None:
            return True
        if self.wire is not None:
            self.wire.kill()
        for p in self.pools.values():
            p.kill()
        fd, self.keeper_fd = self.keeper_fd, None
        return netns.release_keeper(fd, self.keeper_pid)

    def leftovers(self):
        """What of this cluster is still there (after close); its files
        are kept on purpose with TFB_TEST_KEEP."""
        out = netns.leftovers(PREFIX, self.n, self.tmp)
        if os.environ.get("TFB_TEST_KEEP") and self.tmp in out:
            out.remove(self.tmp)
        return out

    # -- the network

    def build_network(self):
        sw = self.ns("sw")
        ip = lambda *a: sh(["ip"] + list(a))  # noqa: E731
        ip("-n", sw, "link", "set", "lo", "up")
        for br in ("lan", "db"):
            ip("-n", sw, "link", "add", br, "type", "bridge")
            ip("-n", sw, "link", "set", br, "up")
        for host in LAN + DB:
            ns = self.ns(host)
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("link", "add", "p-" + host, "netns", sw, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            ip("-n", sw, "link", "set", "p-" + host, "master",
               "lan" if host in LAN else "db", "up")
            ip("-n", ns, "addr", "add", self.addr(host) + "/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
        # This process reaches the cluster as a client on the LAN.
        h = "%s%d-h" % (PREFIX, self.n)
        ip("link", "add", h, "type", "veth", "peer", "name", "p-client", "netns", sw)
        ip("-n", sw, "link", "set", "p-client", "master", "lan", "up")
        ip("addr", "add", self.addr("client") + "/24", "dev", h)
        ip("link", "set", h, "up")
        # The cable between the app hosts and the databases.
        ip("link", "add", "j-lan", "netns", sw, "type", "veth", "peer", "name", "j-db",
           "netns", sw)
        ip("-n", sw, "link", "set", "j-lan", "master", "lan", "up")
        ip("-n", sw, "link", "set", "j-db", "master", "db", "up")

    def delay(self, us):
        """Swap the database cable for netdelay.c delaying us each way
        (None: back to the plain cable).  Returns the wire's last line
        when it stops."""
        sw = self.ns("sw")
        if us is None:
            out = self.wire.stop() if self.wire else ""
            self.wire = None
            sh(["ip", "-n", sw, "link", "set", "j-lan", "up"])
            return out
        if not NETDELAY.exists():
            raise StackError("%s not found: make test builds it" % NETDELAY)
        self.wire = Wire(self.in_ns("sw", [str(NETDELAY), us,
                                          "t-lan", "t-db"]))
        sh(["ip", "-n", sw, "link", "set", "j-lan", "down"])
        sh(["ip", "-n", sw, "link", "set", "t-lan", "master", "lan", "up"])
        sh(["ip", "-n", sw, "link", "set", "t-db", "master", "db", "up"])
        return ""

    def rtt_us(self, src, dst, port, count=30):
        """The median time of a TCP connect from host src to dst:port, in
        microseconds: one round trip."""
        code = ("import socket,time\n"
                "ts=[]\n"
                "for i in range(%d):\n"
                "    s=socket.socket(); t=time.perf_counter()\n"
                "    s.connect(('%s',%d)); ts.append(time.perf_counter()-t); s.close()\n"
                "ts.sort(); print(int(ts[len(ts)//2]*1e6))\n" % (count, self.addr(dst), port))
        return int(sh(self.in_ns(src, [sys.executable, "-c", code]), 30).strip())

    # -- PostgreSQL

    def pg(self, host):
        return PG(self, host)

    # -- the pools and nginx

    def conninfo(self, hosts):
        return ("host=%s port=%d user=%s dbname=%s connect_timeout=2"
                % (",".join(self.addr(h) for h in hosts), PG_PORT, APP_USER, APP_DB))

    def start_pool(self, host):
        p = Pool(self, host)
        self.pools[host] = p
        p.start()
        return p

    def start_nginx(self):
        d = os.path.join(self.tmp, "web")
        os.makedirs(d)
        self.access_log = os.path.join(d, "access.log")
        sh([RENDER, "--dir", d, "--listen", "%s:%d" % (self.addr("web"), HTTP_PORT),
            "--access-log", self.access_log]
           + ["%s:%d" % (self.addr(h), FCGI_PORT) for h in APPS])
        sh(self.in_ns("web", ["/usr/sbin/nginx", "-p", d + "/", "-c", d + "/conf/nginx.conf",
                              "-e", d + "/log/nginx.error.log"]))
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if web.try_get(self.url("/plaintext"), timeout=2).status == 200:
                return
            time.sleep(0.1)
        raise StackError("nginx does not answer on %s" % self.url("/plaintext"))

    def log_lines(self, start=0):
        """nginx's access log from byte start: (lines, the end offset)."""
        with open(self.access_log, "rb") as f:
            f.seek(start)
            data = f.read()
        data = data[:data.rfind(b"\n") + 1]
        return [parse_log(l) for l in data.decode().splitlines()], start + len(data)

    def log_size(self):
        return os.path.getsize(self.access_log)


LOG_RE = re.compile(r'^([\d.]+) (\d{3}) "[A-Z]+ (\S+) HTTP/[\d.]+" "([^"]*)" "([^"]*)" [\d.]+$')


def parse_log(line):
    """(time, status, uri, [upstream addresses tried]) of an access log
    line of deploy/cluster's "upstream" format."""
    m = LOG_RE.match(line)
    if not m:
        return (0.0, 0, line, [])
    ups = [] if m.group(4) == "-" else [a.strip() for a in m.group(4).split(",")]
    return (float(m.group(1)), int(m.group(2)), m.group(3), ups)


class PG(PGCluster):
    """A PostgreSQL server in host's namespace: TCP on its address, its
    unix socket in the test's directory (for psql from here)."""

    def __init__(self, cluster, host):
        self.c, self.host = cluster, host
        net = "%s.%d.0/24" % (NET, cluster.n)
        super().__init__(os.path.join(cluster.tmp, host), PG_PORT, listen=cluster.addr(host),
                         hba="local all all trust\nhost all all %s trust\n"
                         "host replication all %s trust\n" % (net, net),
                         wrap=lambda argv: cluster.in_ns(host, argv))

    def psql(self, sql=None, db=APP_DB, **kw):
        return super().psql(sql, db=db, **kw)

    def app_backends(self):
        """tfb-fcgi's connections here from the app hosts."""
        return int(self.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                             "application_name = '%s' AND client_addr IN (%s)"
                             % (APP_NAME, ", ".join("'%s'" % self.c.addr(h)
                                                    for h in APPS))))

    def calls(self, pattern):
        """pg_stat_statements' calls of statements matching pattern."""
        return int(self.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                             "WHERE query ~* '%s'" % pattern))


class Pool:
    """tfb-spawn on an app host, bound to the host's own address, its
    workers on the primary (--db) and the reads' hosts (--db-read)."""

    def __init__(self, cluster, host):
        self.c, self.host = cluster, host
        self.dir = os.path.join(cluster.tmp, host)
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(self.dir, "app.log")
        self.proc = None

    def start(self):
        c = self.c
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["FCGI_WEB_SERVER_ADDRS"] = c.addr("web")
        argv = c.in_ns(self.host, [
            SPAWN_BIN, "--bind", "%s:%d" % (c.addr(self.host), FCGI_PORT), "-w", WORKERS,
            "-p", os.path.join(self.dir, "spawn.pid"), "-l", self.log,
            "--graceful-timeout", "5s", "--",
            APP_BIN, "--db", c.conninfo(("pg2", "pg1")),
            "--db-read", c.conninfo(("pg1", "pg2"))])
        with open(os.devnull, "rb") as null:
            self.proc = subprocess.Popen(argv, env=env, stdin=null, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if len(self.workers()) == WORKERS and self.accepting():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise StackError("%s: the pool did not start: %s" % (self.host, self.log_tail()))

    def workers(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [p for p in proc.descendants(self.proc.pid) if stack.is_app(p)]

    def accepting(self):
        """Each worker logs when it accepts only at debug level; the
        supervisor's readiness is its port answering here."""
        r = run(["ip", "netns", "exec", self.c.ns(self.host), "ss", "-Hltn",
                     "sport = :%d" % FCGI_PORT], 10)
        return r.returncode == 0 and str(FCGI_PORT) in (r.stdout or "")

    def roll(self, timeout=30):
        """SIGHUP: a rolling restart; True once every worker is new."""
        old = set(self.workers())
        os.kill(self.proc.pid, signal.SIGHUP)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            now = set(self.workers())
            if len(now) == WORKERS and not now & old:
                return True
            time.sleep(0.05)
        return False

    def kill(self):
        """Every process of the host: what a crash of the machine leaves
        of the pool.  True once they are all gone."""
        done = kill_all(ns_pids(self.c.ns(self.host)))
        if self.proc is not None:
            wait_exit(self.proc, 5)
        return done

    def log_tail(self, n=8):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(tail(f.read(), n))
        except OSError:
            return ""


class Wire:
    """netdelay.c, running."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.kill()
            raise StackError("netdelay did not start: %r" % line)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return ""
        return out.strip()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError):
            pass


# --------------------------------------------------------------------------
# Load

def load(cluster, paths, concurrency):
    """Clients on kept connections to the cluster's nginx (web.Clients):
    results (start, end, path, status, body) once stopped."""
    return web.Clients(cluster.addr("web"), HTTP_PORT, paths, concurrency)


def fortunes_on(cluster, pgs, count=20):
    """count /fortunes through nginx, pg_stat_statements reset first on
    each of pgs; {host: fortune statements counted there}, and the
    statuses seen."""
    for pg in pgs:
        pg.psql("SELECT pg_stat_statements_reset()")
    statuses = [web.try_get(cluster.url("/fortunes"), timeout=10).status for _ in range(count)]
    time.sleep(0.2)  # the last statements reach pg_stat_statements
    return {pg.host: pg.calls(r"\mfortune\M") for pg in pgs}, statuses


def wrk(url, connections, seconds):
    """(req/s, p50 ms, errors; -1 when wrk reported nothing)."""
    r = Wrk(url, max(1, round(seconds)), connections=connections).result()
    return r["rps"], r["p50_us"] / 1000.0 if r["parsed"] else None, \
        r["failures"] if r["parsed"] else -1


# --------------------------------------------------------------------------
# The checks

def check_cluster(tap, c, pg1, pg2):
    try:
        streaming = pg1.psql("SELECT count(*) FROM pg_stat_replication "
                             "WHERE state = 'streaming' AND client_addr = '%s'"
                             % c.addr("pg2"))
        recovery = pg2.psql("SELECT pg_is_in_recovery()")
        rows = pg2.psql("SELECT count(*) FROM world")
    except StackError as e:
        tap.fail("replication: pg2 streams from pg1", str(e))
        return False
    return tap.check(streaming == "1" and recovery == "t" and rows == "10000",
                     "replication: pg2 (%s) streams from pg1 (%s), is in recovery, holds "
                     "the 10000 World rows" % (c.addr("pg2"), c.addr("pg1")),
                     "streaming %s, in recovery %s, rows %s" % (streaming, recovery, rows))


def check_allow_list(tap, c):
    """The app hosts serve nginx only: this client is on the same LAN."""
    addr = (c.addr("app1"), FCGI_PORT)
    try:
        with fcgi.connect(addr, timeout=5) as conn:
            conn.send(fcgi.begin() + fcgi.params(fcgi.get_params("/plaintext")) + fcgi.stdin())
            closed, why = conn.eof(5), "answered, or silent for 5 s"
    except OSError as e:
        closed, why = False, str(e)
    tap.check(closed, "FCGI_WEB_SERVER_ADDRS=%s: a FastCGI request from %s to %s:%d is closed "
              "unanswered" % (c.addr("web"), c.addr("client"), addr[0], addr[1]), why)


def check_both_serve(tap, c):
    start = c.log_size()
    statuses = [web.try_get(c.url("/db"), timeout=10).status for _ in range(20)]
    lines, _ = c.log_lines(start)
    by = {}
    for _, status, _, ups in lines:
        if status == 200 and ups:
            by[ups[-1]] = by.get(ups[-1], 0) + 1
    want = ["%s:%d" % (c.addr(h), FCGI_PORT) for h in APPS]
    tap.check(statuses.count(200) == 20 and all(by.get(w, 0) > 0 for w in want),
              "both app hosts serve: 20 /db through nginx, answered by %s"
              % ", ".join("%s %d" % (w, by.get(w, 0)) for w in want),
              ["statuses %s" % statuses, "by upstream %s" % by])


def cluster_psql(pg1, pg2):
    """The verifier's psql for a cluster: pg_stat_statements read and
    reset on both servers, the counts added up (the reads ran on the
    standby, /updates on the primary); anything else on the primary."""
    def psql(sql):
        if "pg_stat_statements" not in sql:
            return pg1.psql(sql, user=APP_USER)
        outs = [pg.psql(sql, user=APP_USER) for pg in (pg1, pg2)]
        if "reset" in sql:
            return outs[0]
        sums = [sum(int(v) for v in vals) for vals in zip(*(o.split("|") for o in outs))]
        return "|".join(str(v) for v in sums)
    return psql


def check_verifier(tap, c, pg1, pg2):
    workdir = os.path.join(c.tmp, "siege")
    t0 = time.monotonic()
    v = tv.Verifier(c.url(""), psql=cluster_psql(pg1, pg2), workdir=workdir, log=tap.note)
    for name, problems in v.verify_all():
        tap.problems("TFB %s (through the cluster)" % name, problems)
    tap.note("TFB verifier replica took %.1f s" % (time.monotonic() - t0))


def check_standby(tap, c, pg1, pg2):
    """Reads on the standby; the standby stopped under load; back."""
    try:
        conns = pg2.app_backends()
    except StackError as e:
        conns = str(e)
    tap.check(conns == 2 * WORKERS,
              "each worker's read connection is on the standby: %d tfb-fcgi connections from "
              "the app hosts there" % (2 * WORKERS), "got %s" % conns)
    counts, statuses = fortunes_on(c, (pg1, pg2))
    tap.check(counts == {"pg1": 0, "pg2": 20} and statuses.count(200) == 20,
              "reads on the standby: 20 /fortunes, their statements counted on pg2, none on pg1",
              "counted %s, statuses %s" % (counts, statuses))

    with load(c, READS, 4) as ld:
        time.sleep(1.0)
        try:
            pg2.stop("fast")
            stopped = True
        except StackError as e:
            stopped = str(e)
        time.sleep(1.5)
    tap.check(stopped is True, "standby stopped (pg_ctl stop -m fast) under a read load",
              str(stopped))
    bad = ld.failed()
    tap.check(ld.results and not bad,
              "while it stopped, every read was answered 200 (%d requests: %s)"
              % (len(ld.results), ld.summary()),
              ["%s %s" % (r[2], r[3]) for r in bad[:10]] + [c.pools["app1"].log_tail()])
    counts, statuses = fortunes_on(c, (pg1,))
    tap.check(counts == {"pg1": 20} and statuses.count(200) == 20,
              "reads moved to the primary: 20 /fortunes, their statements counted on pg1",
              "counted %s, statuses %s" % (counts, statuses))
    tap.note("tfb-fcgi connections from the app hosts on pg1 now: %d" % pg1.app_backends())

    # Back: the standby started again; a reconnection takes a worker's
    # reads there (prefer-standby), and a rolling restart reconnects all.
    end, answers, streaming, err = time.monotonic() + 30, None, None, ""
    try:
        pg2.start()
        while (answers, streaming) != ("1", "1") and time.monotonic() < end:
            time.sleep(0.2)
            answers = pg2.psql("SELECT 1", timeout=10)
            streaming = pg1.psql("SELECT count(*) FROM pg_stat_replication "
                                 "WHERE state = 'streaming'")
    except StackError as e:
        err = str(e)
    if not tap.check((answers, streaming) == ("1", "1"), "standby started again, answering "
                     "and streaming within 30 s", [err, "answers %s, streaming %s"
                                                   % (answers, streaming)]):
        return
    # One host at a time, as deploy/cluster/README.md says: a kept
    # connection closed by a stopping worker as nginx reuses it counts as
    # a failure of that host, and the other must be in when it is out.
    with load(c, ALL_ROUTES, 4) as ld:
        time.sleep(0.5)
        rolled = c.pools["app1"].roll()
        time.sleep(0.5)
    bad = ld.failed()
    tap.check(rolled and ld.results and not bad,
              "app1's pool rolled (SIGHUP) under a load of every route, /updates included: "
              "no failed request (%d: %s)" % (len(ld.results), ld.summary()),
              ["rolled %s" % rolled] + ["%s %s" % (r[2], r[3]) for r in bad[:10]])
    tap.check(c.pools["app2"].roll(), "app2's pool rolled (SIGHUP)")
    counts, statuses = fortunes_on(c, (pg1, pg2))
    tap.check(counts == {"pg1": 0, "pg2": 20} and statuses.count(200) == 20,
              "the new workers read on the standby again: 20 /fortunes counted on pg2",
              "counted %s, statuses %s" % (counts, statuses))


def check_delay(tap, c):
    """What a round trip to the database costs: the database cable
    delayed by netdelay.c.  The figures are notes: this machine is
    shared, and the wire runs on it."""
    conns = 4 * WORKERS  # twice the workers of both app hosts: all busy
    paths = ("/db", "/queries?queries=20")
    rows = []

    def measure(label):
        rtt = c.rtt_us("app1", "pg2", PG_PORT)
        res = {}
        for p in paths:
            res[p] = wrk(c.url(p), conns, MEASURE_S)
        rows.append((label, rtt, res))
        return rtt, res

    measure("veth")
    for us in DELAYS_US:
        try:
            c.delay(us)
            rtt, res = measure("+%d us each way" % us)
        finally:
            last = c.delay(None)
        tap.note("netdelay: " + last)
        tap.check(rtt >= 2 * us,
                  "database cable delayed %d us each way: the round trip from app1 to pg2 "
                  "takes %d us (at least %d)" % (us, rtt, 2 * us))
        tap.check(all(r[2] == 0 and r[0] > 0 for r in res.values()),
                  "through it, /db and /queries?queries=20 answered without an error",
                  "%s" % res)
    tap.note("wrk -c %d (%d workers on each app host), %g s each:"
             % (conns, WORKERS, MEASURE_S))
    for label, rtt, res in rows:
        tap.note("  %-18s RTT %5d us  %s" % (label, rtt, "  ".join(
            "%s %.0f req/s p50 %.2f ms" % (p, r[0], r[1] or 0) for p, r in res.items())))


def check_kill(tap, c, pg1):
    """app1's whole pool killed under load."""
    app1 = "%s:%d" % (c.addr("app1"), FCGI_PORT)
    app2 = "%s:%d" % (c.addr("app2"), FCGI_PORT)
    pg1.psql("SELECT pg_stat_statements_reset()")
    start = c.log_size()
    with load(c, ALL_ROUTES, CONCURRENCY) as ld:
        time.sleep(1.5)
        t_kill = time.monotonic()
        gone = c.pools["app1"].kill()
        t_dead = time.monotonic()
        at_dead = c.log_size()
        time.sleep(2.5)
    time.sleep(0.2)  # the last statements reach pg_stat_statements
    res = ld.results
    bad = ld.failed()
    tap.check(gone, "app1 killed: SIGKILL to every process in its namespace, all gone "
              "in %.0f ms" % ((t_dead - t_kill) * 1000))
    in_flight = [r for r in res if r[0] < t_kill < r[1]]
    tap.note("load: %d requests by %d clients, %d in flight when app1 died; %s"
             % (len(res), CONCURRENCY, len(in_flight), ld.summary()))
    tap.check(len(bad) <= CONCURRENCY,
              "failed requests: %d, at most the %d in flight" % (len(bad), CONCURRENCY),
              ["%s %s" % (r[2], r[3]) for r in bad[:20]])
    bad_reads = [r for r in bad if not r[2].startswith("/updates")]
    tap.check(not bad_reads, "no read failed: nginx sent those in flight on app1 to app2",
              ["%s %s" % (r[2], r[3]) for r in bad_reads[:20]])
    after = [r for r in res if r[0] > t_dead and r[3] == 200]
    tap.check(len(after) > 0, "app2 takes the traffic: %d requests sent after app1 died "
              "answered 200" % len(after))

    lines, _ = c.log_lines(start)
    later, _ = c.log_lines(at_dead)
    by_app1_later = [l for l in later if l[1] == 200 and l[3] and l[3][-1] == app1]
    tap.check(len(by_app1_later) <= CONCURRENCY and later,
              "nginx's log after app1 died: %d answers, %d of them from app1 (requests it "
              "had answered before dying, at most the %d in flight), the rest from app2"
              % (len(later), len(by_app1_later), CONCURRENCY))
    updates = [l for l in lines if l[2].startswith("/updates")]
    retried_updates = [l for l in updates if len(l[3]) > 1]
    retried_reads = [l for l in lines if not l[2].startswith("/updates") and len(l[3]) > 1]
    tap.check(updates and not retried_updates,
              "no /updates sent to a second host: each of the %d in nginx's log names one "
              "upstream (%d reads were retried on app2)" % (len(updates), len(retried_reads)),
              ["%s" % (l,) for l in retried_updates[:10]])
    ok_updates = sum(1 for r in res if r[2].startswith("/updates") and r[3] == 200)
    failed_updates = sum(1 for r in bad if r[2].startswith("/updates"))
    sent_updates = ok_updates + failed_updates
    try:
        written = pg1.calls("^UPDATE world")
    except StackError as e:
        written = str(e)
    tap.check(isinstance(written, int) and ok_updates <= written <= sent_updates,
              "the primary ran %s UPDATEs for %d /updates answered 200 and %d failed: each at "
              "most once" % (written, ok_updates, failed_updates))
    tap.note("nginx log: %s" % ", ".join(
        "%s %d" % (u, sum(1 for l in lines if l[3] and l[3][-1] == u)) for u in (app1, app2)))
    # app2 alone, now: every route through the verifier's eyes once more.
    statuses = {p: web.try_get(c.url(p), timeout=10).status for p in ALL_ROUTES}
    tap.check(all(s == 200 for s in statuses.values()),
              "with app1 dead, every route answers 200 through nginx", "%s" % statuses)


# --------------------------------------------------------------------------
# A body over --request-max (issue 17, reproduction 1)

BODY = b"x" * 70 * 1024


def error_log_since(c, start):
    """nginx's error log from byte start: (lines, the end offset)."""
    path = os.path.join(c.tmp, "web", "log", "nginx.error.log")
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return [], start
    return data.decode(errors="replace").splitlines(), start + len(data)


def check_body(tap, c):
    """Three GET /db and two POST /updates with a 70 KB body through the
    cluster's nginx: each answered 413 by nginx, and no app host taken
    out: nginx logs no upstream failed and no "no live upstreams", and
    /db answers 10 of 10.  (A reset for the body took every host out for
    12 s.)"""
    _, start = error_log_since(c, 0)
    got = []
    for method, path, n in (("GET", "/db", 3), ("POST", "/updates?queries=2", 2)):
        for _ in range(n):
            try:
                got.append(web.request(method, c.url(path), body=BODY, timeout=15).status)
            except OSError as e:
                got.append("%s: %s" % (type(e).__name__, e))
    tap.check(got == [413] * 5, "a 70 KB body, three GET /db and two POST /updates through "
              "the cluster's nginx: 413 each", "statuses %r" % got)
    statuses = [web.try_get(c.url("/db"), timeout=10).status for _ in range(10)]
    lines, _ = error_log_since(c, start)
    failed = [ln for ln in lines if ("upstream" in ln and "failed" in ln)
              or "no live upstreams" in ln]
    tap.check(not failed and statuses.count(200) == 10,
              "then every app host is in service: nginx's error log names no upstream "
              "failed, /db answers %d of 10" % statuses.count(200),
              failed[-10:] + ["statuses %s" % statuses])


# --------------------------------------------------------------------------
# The primary stopped under load (issue 17, item 8)

UPDATES = "/updates?queries=5"
PRIMARY_LOAD = ["/db", UPDATES, "/queries?queries=3", "/fortunes", UPDATES]
DB_TIMEOUT_S = 5.0  # tfb-fcgi's --db-timeout, its default: the pools set none
BACK_S = 2.0        # all 200 again within this of the primary's return
# Every row an UPDATE writes, in the order the writes of a row commit: a
# write of a row waits for the commit of the one before it (its row
# lock), so seq orders the writes of each row as they took effect.
AUDIT_SQL = """
CREATE TABLE world_audit (seq bigserial, xid bigint, id int, randomnumber int);
CREATE FUNCTION world_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO world_audit (xid, id, randomnumber)
    VALUES (txid_current(), NEW.id, NEW.randomnumber);
    RETURN NULL;
END $$;
CREATE TRIGGER world_audit AFTER UPDATE ON world FOR EACH ROW EXECUTE FUNCTION world_audit();
"""
AUDIT_DROP = """
DROP TRIGGER IF EXISTS world_audit ON world;
DROP FUNCTION IF EXISTS world_audit();
DROP TABLE IF EXISTS world_audit;
"""


def update_rows(r):
    """The {id: randomNumber} a 200 /updates answered, or None."""
    try:
        rows = json.loads(r[4])
        return {int(x["id"]): int(x["randomNumber"]) for x in rows}
    except (ValueError, TypeError, KeyError):
        return None


def audit(pg1):
    """{xid: {id: value}} of the writes audited, and {id: its last value}."""
    by_xid, last = {}, {}
    out = pg1.psql("SELECT xid, id, randomnumber FROM world_audit ORDER BY seq")
    for line in out.splitlines():
        xid, i, v = (int(x) for x in line.split("|"))
        by_xid.setdefault(xid, {})[i] = v
        last[i] = v
    return by_xid, last


def write_problems(res, pg1):
    """What the database says of the /updates of the load, once the
    primary is back: (problems, notes).  Every /updates answered 200 is
    one transaction, committed, of the rows it reported; every
    transaction wrote 5 rows (nothing half-written); those no 200 reports
    are at most the /updates not answered 200 (each a statement the
    server had before it stopped, committed once it resumed, whose answer
    found its client gone: written whole, answered 503); every row holds
    the value of its last write."""
    by_xid, last = audit(pg1)
    problems = ["transaction %d wrote %d rows, not 5: %s" % (x, len(rows), sorted(rows))
                for x, rows in by_xid.items() if len(rows) != 5]
    unmatched = set(by_xid)
    answered = [update_rows(r) for r in res if r[2] == UPDATES and r[3] == 200]
    for rows in answered:
        xid = next((x for x, w in by_xid.items() if w == rows), None)
        if xid is None:
            problems.append("a 200 /updates no transaction committed: %s" % rows)
        unmatched.discard(xid)
    not_ok = sum(1 for r in res if r[2] == UPDATES and r[3] != 200)
    if len(unmatched) > not_ok:
        problems.append("%d transactions no answer reports, more than the %d /updates not "
                        "answered 200" % (len(unmatched), not_ok))
    world = {}
    ids = sorted(last)
    for k in range(0, len(ids), 500):
        q = "SELECT id, randomnumber FROM world WHERE id IN (%s)" % ",".join(
            str(i) for i in ids[k:k + 500])
        for line in pg1.psql(q).splitlines():
            i, v = line.split("|")
            world[int(i)] = int(v)
    problems += ["row %d holds %s, its last write %s" % (i, world.get(i), v)
                 for i, v in last.items() if world.get(i) != v][:10]
    return problems, ["%d /updates answered 200 and %d not: %d transactions committed, "
                      "%d of them answered 503 (committed after the primary resumed)"
                      % (len(answered), not_ok, len(by_xid), len(unmatched))]


def recovery(res, back):
    """Seconds from back (the primary's return) to the end of the last
    request started after it that was not answered 200 (0: none was);
    and how many /updates started after that answered 200."""
    bad = [r[1] for r in res if r[0] >= back and r[3] != 200]
    took = max(bad) - back if bad else 0.0
    later = sum(1 for r in res if r[2] == UPDATES and r[3] == 200 and r[0] >= back + took)
    return took, later


def primary_answers(tap, label, res, slow_ok):
    """The load's answers while the primary was out: every read 200 (the
    standby's), every /updates 200 or 503, the 503s within the answer
    deadline (slow_ok: the longest a 503 may take), some 503."""
    reads = [r for r in res if r[2] != UPDATES]
    ups = [r for r in res if r[2] == UPDATES]
    bad_reads = [r for r in reads if r[3] != 200]
    tap.check(reads and not bad_reads, "%s: every read answered 200, from the standby "
              "(%d reads)" % (label, len(reads)),
              ["%s %s" % (r[2], r[3]) for r in bad_reads[:10]])
    u503 = [r for r in ups if r[3] == 503]
    other = [r for r in ups if r[3] not in (200, 503)]
    slowest = max((r[1] - r[0] for r in u503), default=0.0)
    tap.check(u503 and not other and slowest <= slow_ok,
              "%s: /updates answered 200 or 503, never otherwise; %d x 503, each within "
              "%.1f s (the longest %.2f s)" % (label, len(u503), slow_ok, slowest),
              ["%s %s %r" % (r[2], r[3], r[4][:80]) for r in other[:10]])


def check_primary_back(tap, c, pg1, label, res, back):
    took, later = recovery(res, back)
    tap.check(took <= BACK_S and later > 0,
              "%s: recovered by itself within %.0f s of the primary's return (%.2f s; then "
              "%d /updates answered 200, every request 200)" % (label, BACK_S, took, later))
    try:
        problems, notes = write_problems(res, pg1)
    except (StackError, ValueError) as e:
        problems, notes = [str(e)], []
    tap.check(not problems, "%s: nothing half-written: every 200 /updates one committed "
              "transaction of the rows it reported, every transaction 5 rows, every row "
              "its last write" % label, problems[:10])
    tap.note(*["%s: %s" % (label, n) for n in notes])


def primary_stopped(tap, c, pg1):
    """SIGSTOP: a primary that stopped answering, for STOP_S under load."""
    label = "primary SIGSTOPped"
    pg1.psql("TRUNCATE world_audit")
    with load(c, PRIMARY_LOAD, 8) as ld:
        time.sleep(1.5)
        with Frozen(pg1.postmaster_pid()) as fz:
            tap.check(fz.count > 1, "%s: the primary stopped whole under a load of reads "
                      "and /updates (SIGSTOP to its %d processes)" % (label, fz.count))
            time.sleep(DB_TIMEOUT_S + 2)
        back = time.monotonic()
        time.sleep(BACK_S + 1)
    primary_answers(tap, label, ld.results, DB_TIMEOUT_S + 1.5)
    check_primary_back(tap, c, pg1, label, ld.results, back)
    tap.note("%s: %s" % (label, ld.summary()))


def primary_shut_down(tap, c, pg1):
    """pg_ctl stop -m fast under load, then started again."""
    label = "primary shut down (pg_ctl stop -m fast)"
    pg1.psql("TRUNCATE world_audit")
    err = ""
    with load(c, PRIMARY_LOAD, 8) as ld:
        time.sleep(1.5)
        try:
            pg1.stop("fast")
            time.sleep(2)
        finally:
            try:
                pg1.start()
            except StackError as e:
                err = str(e)
        back = time.monotonic()
        time.sleep(BACK_S + 1)
    if not tap.check(not err, "%s: started again" % label, err):
        return
    primary_answers(tap, label, ld.results, 1.0)
    check_primary_back(tap, c, pg1, label, ld.results, back)
    tap.note("%s: %s" % (label, ld.summary()))


def check_primary(tap, c, pg1):
    """The primary stopped under a load of reads and /updates, each way:
    reads answer 200 from the standby, /updates 503 within the answer
    deadline and nothing half-written, all 200 again within 2 s of the
    primary's return, by itself."""
    try:
        pg1.psql(AUDIT_SQL)
    except StackError as e:
        tap.fail("an audit of World's writes on the primary", str(e))
        return
    try:
        primary_stopped(tap, c, pg1)
        primary_shut_down(tap, c, pg1)
    finally:
        try:
            pg1.psql(AUDIT_DROP)
        except StackError as e:
            tap.fail("the audit removed", str(e))


# --------------------------------------------------------------------------

def build(tap, c):
    """The network, both databases, the pools and nginx; (pg1, pg2), or
    None when a part could not be made (a failed check)."""
    t0 = time.monotonic()
    try:
        return made(tap, c, t0)
    except StackError as e:
        tap.fail("cluster built", str(e))
        return None


def made(tap, c, t0):
    c.build_network()
    pg1, pg2 = c.pg("pg1"), c.pg("pg2")
    pg1.initdb()
    pg1.start()
    pg1.load(SQL)
    pg2.basebackup(pg1, c.addr("pg1"))
    pg2.start()
    for h in APPS:
        c.start_pool(h)
    c.start_nginx()
    r = web.try_get(c.url("/db"), timeout=10)
    return (pg1, pg2) if tap.check(
        r.status == 200, "cluster %s%d-*: nginx %s, app hosts %s, primary %s, standby %s, "
        "%d workers per app host, /db answered (%.1f s)" % (
            PREFIX, c.n, c.addr("web"), ", ".join(c.addr(h) for h in APPS), c.addr("pg1"),
            c.addr("pg2"), WORKERS, time.monotonic() - t0), r.summary()) else None


def body(tap):
    if not tap.root("cluster in network namespaces (ip netns, veth, bridges) needs root"):
        return
    tap.need([APP_BIN, SPAWN_BIN, RENDER, NETDELAY])
    if not (tap.tool("siege", "siege for the verifier") and tap.tool("wrk", "wrk")
            and tap.tool("ip", "ip (iproute2)") and tap.tool("ss", "ss (iproute2)")):
        return
    t0 = time.monotonic()
    try:
        c = Cluster(tap)
    except PermissionError as e:
        if in_ci():
            tap.fail("network namespaces allowed", str(e))
        else:
            tap.skip("cluster in network namespaces", "network namespaces not allowed "
                     "here: %s" % e)
        return
    pg1 = pg2 = None
    try:
        pgs = build(tap, c)
        if pgs is None:
            return
        pg1, pg2 = pgs
        if not check_cluster(tap, c, pg1, pg2):
            return
        check_allow_list(tap, c)
        check_both_serve(tap, c)
        check_body(tap, c)
        check_verifier(tap, c, pg1, pg2)
        check_standby(tap, c, pg1, pg2)
        check_primary(tap, c, pg1)
        if DELAYS_US:
            check_delay(tap, c)
        check_kill(tap, c, pg1)
    finally:
        if tap.failed:
            for pg in (pg1, pg2):
                if pg is not None:
                    tap.note("--- %s log" % pg.host, *pg.log_tail())
            for p in c.pools.values():
                tap.note("--- %s app.log: %s" % (p.host, p.log_tail()))
        cleaned = c.close()
        left = c.leftovers()
        tap.check(cleaned and not left, "everything removed: processes, namespaces, "
                  "interfaces, %s" % c.tmp, ["keeper done: %s" % cleaned, "left: %s" % left])
        tap.note("test_cluster took %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main(body, deadline=420)
