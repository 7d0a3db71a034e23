"""pg: PostgreSQL for a test.

Two ways, one each:

  Database   the database the stack would use: the one PGHOST names when
             it is set (nothing started), else deploy/stack's embedded
             cluster in a VAR of its own (deploy/stack pg start ... stop);
             for tests that run the workers themselves.
  Cluster    a cluster of the test's own, started without deploy/stack:
             initdb into a directory, the settings and pg_hba.conf on
             pg_ctl's command line (root writes nothing into a directory
             the server's owner owns), pg_ctl start/stop, psql over its
             unix socket.  As root the server runs as "postgres"; wrap
             runs every server-side command inside something (ip netns
             exec).  test_external_pg plays "an existing server" with it,
             test_cluster a primary and its standby.
  WorldLock  another client holding ACCESS EXCLUSIVE on world, to hold
             the workers in the database.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from . import APP_CONNECTIONS_SQL, proc
from .cmd import run, tail, wait_for
from .stack import Stack, StackError

OS_USER = "postgres"  # the cluster's owner when we are root
APP_USER, APP_PASSWORD, APP_DB = "benchmarkdbuser", "benchmarkdbpass", "hello_world"
# Every cluster of a test: what TechEmpower's has, and no disk waits.
SETTINGS = {"max_connections": "200", "shared_preload_libraries": "pg_stat_statements",
            "pg_stat_statements.track": "all", "pg_stat_statements.max": "10000",
            "synchronous_commit": "off", "fsync": "off", "full_page_writes": "off"}


def bindir():
    """PG_BINDIR, else the newest /usr/lib/postgresql/*/bin (as deploy/stack)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                  key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    return dirs[-1] if dirs else Path("/usr/lib/postgresql/15/bin")


def _check(r, what):
    if r.returncode != 0:
        raise StackError("%s exited %s: %s" % (what, r.returncode, " | ".join(tail(r.stdout, 6))))
    return r.stdout


class Cluster:
    """A PostgreSQL cluster in base (made here; a directory its owner
    may write), listening on listen:port over TCP and on its unix socket
    in base.  hba: pg_hba.conf's lines; settings: more of postgresql.conf's.
    Every method raises StackError when its command fails."""

    def __init__(self, base, port, listen="127.0.0.1", hba="local all all trust\n",
                 settings=None, wrap=lambda argv: argv):
        self.base, self.port, self.listen, self.wrap = str(base), port, listen, wrap
        self.bindir = bindir()
        self.data = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "pg.log")
        self.hba = os.path.join(self.base, "pg_hba.conf")
        self.settings = dict(SETTINGS, **(settings or {}))
        self.started = False
        os.makedirs(self.base, exist_ok=True)
        # The owner needs it for the data and the socket, we for psql's cwd.
        os.chmod(self.base, 0o755)
        with open(self.hba, "w") as f:
            f.write("# written by tests/kit/pg.py\n" + hba)
        if os.geteuid() == 0:
            shutil.chown(self.base, OS_USER, OS_USER)

    def owner(self, argv, timeout=90):
        """A server-side command as the cluster's owner, from its directory."""
        argv = [str(self.bindir / argv[0])] + [str(a) for a in argv[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", OS_USER, "--"] + argv
        return _check(run(self.wrap(argv), timeout, cwd=self.base), " ".join(argv[:6]))

    def initdb(self):
        self.owner(["initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8", "--no-locale",
                    "--no-sync", "-A", "trust"], 60)

    def basebackup(self, source, host):
        """A copy of source (at host) made to follow it (-R: standby.signal
        and primary_conninfo)."""
        self.owner(["pg_basebackup", "-h", host, "-p", source.port, "-U", "postgres",
                    "-D", self.data, "-R", "-X", "stream", "-c", "fast", "--no-sync"])

    def start(self):
        opts = dict(self.settings, listen_addresses=self.listen, port=self.port,
                    unix_socket_directories=self.base, hba_file=self.hba)
        self.started = True  # from here, stop() must run pg_ctl stop
        try:
            self.owner(["pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                        "-s", "-o", " ".join("-c %s=%s" % kv for kv in opts.items())])
        except StackError as e:
            raise StackError("%s\n%s" % (e, "\n".join(self.log_tail())))

    def postmaster_pid(self):
        pids = proc.read_pids(os.path.join(self.data, "postmaster.pid"))
        return pids[0] if pids else None

    def running(self):
        pid = self.postmaster_pid()
        return bool(pid) and proc.alive(pid)

    def stop(self, mode="fast"):
        """pg_ctl stop -m mode; after a failure, -m immediate."""
        try:
            self.owner(["pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "30", "-s"])
        except StackError:
            if mode == "immediate":
                raise
            self.owner(["pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w", "-t",
                        "10", "-s"], 20)

    def remove(self):
        """Stopped, its postmaster killed if it must be, the directory
        removed (unless TFB_TEST_KEEP); True when the server is gone."""
        pid = self.postmaster_pid()
        if self.started and self.running():
            try:
                self.stop()
            except StackError:
                if pid and proc.alive(pid):
                    os.kill(pid, 9)
                    wait_for(lambda: not proc.alive(pid), 5)
        self.started = False
        gone = not self.running()
        if not os.environ.get("TFB_TEST_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)
        return gone

    def psql(self, sql=None, db="postgres", user="postgres", file=None, env=None,
             conn=None, timeout=60):
        """One command (or file) through psql, unaligned and tuples only:
        over the unix socket as user (postgres: the superuser) unless
        conn gives other connection arguments; env: the PG* variables,
        the caller's taken out."""
        conn = ["-h", self.base, "-p", self.port, "-U", user, "-d", db] if conn is None else conn
        argv = [str(self.bindir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1"] + conn
        argv += ["-f", file] if file else ["-c", sql]
        e = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        e.update(env or {})
        return _check(run(argv, timeout, env=e, cwd=self.base),
                      "psql %r" % str(sql or file)[:80]).strip()

    def load(self, sqldir):
        """deploy/sql: the roles as the superuser, then the tables."""
        self.psql(file=os.path.join(sqldir, "roles.sql"), db="postgres", timeout=120)
        self.psql(file=os.path.join(sqldir, "create.sql"), user=APP_USER, db=APP_DB,
                  timeout=120)

    def log_tail(self, n=15):
        try:
            return tail(Path(self.log).read_text(errors="replace"), n)
        except OSError:
            return []


class Database:
    """PostgreSQL for workers a test runs itself: the one PGHOST names when
    it is set (nothing started), else deploy/stack's embedded cluster in
    a VAR of its own.  pg: the PG* variables that reach it."""

    def __init__(self, tap):
        self.tap = tap
        self.stack = None
        self.pg = {}

    def __enter__(self):
        if os.environ.get("PGHOST"):
            self.pg = {k: v for k, v in os.environ.items() if k.startswith("PG")}
            return self
        self.stack = Stack(name="pg", tap=self.tap)
        try:
            self.stack.call("pg", "start", timeout=Stack.START_TIMEOUT)
            self.pg = self.stack.pg_env()
            if "PGHOST" not in self.pg:
                raise StackError("deploy/stack env named no PGHOST")
        except BaseException:
            self.stack.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        if self.stack is not None:
            self.stack.cleanup()
        return False

    def psql(self, sql):
        r = run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], 60,
                env=dict(os.environ, **self.pg))
        return _check(r, "psql %r" % sql[:80]).strip()

    def app_connections(self):
        return int(self.psql(APP_CONNECTIONS_SQL))


class WorldLock:
    """Another client holding an ACCESS EXCLUSIVE lock on world for seconds:
    psql (argv: the command up to its options, with env) in a transaction
    that sleeps.  held: whether a second session (psql: SQL -> its output)
    saw the lock granted within 10 s; a request sent before that may pass
    before the lock, and a test that needs its workers held must not count
    on a sleep (psql starts slowly on a loaded machine).  wait(): the
    transaction's end (seconds + 10 at most); leaving the with block, or
    kill() (Scene.own() takes it), ends psql at once."""

    GRANTED_SQL = ("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                   "WHERE c.relname = 'world' AND l.mode = 'AccessExclusiveLock' "
                   "AND l.granted")

    def __init__(self, argv, env, psql, seconds):
        self.seconds = seconds
        self.proc = subprocess.Popen(
            [str(a) for a in argv] + ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                                      "BEGIN; LOCK TABLE world IN ACCESS EXCLUSIVE MODE; "
                                      "SELECT pg_sleep(%d); COMMIT;" % seconds],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.held = bool(wait_for(lambda: self._granted(psql), 10, 0.1))

    @staticmethod
    def _granted(psql):
        try:
            return psql(WorldLock.GRANTED_SQL) == "1"
        except StackError:
            return False

    def wait(self):
        """psql's exit status once the transaction ends (None: killed)."""
        try:
            return self.proc.wait(self.seconds + 10)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        """Its whole tree (deploy/stack psql runs psql under a shell)."""
        if self.proc.poll() is None:
            proc.kill_tree(self.proc.pid)
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False
