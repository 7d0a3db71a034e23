#!/usr/bin/env python3
"""test_external_pg.py: the stack pointed at an existing PostgreSQL.

The requirement: pointed at an existing TechEmpower-style PostgreSQL
through the PG* variables, every route passes every rule of tfb-rules.md,
the pg_stat_statements counts under 512 concurrent clients included.

  1. A PostgreSQL cluster of this test's own, started without deploy/stack,
     plays "an existing server": initdb into a /tmp directory, TCP on
     127.0.0.1 at a free port, its unix socket in that directory,
     scram-sha-256 for every TCP connection, pg_stat_statements preloaded
     with track = all.  deploy/sql/roles.sql makes TFB's superuser
     benchmarkdbuser (password benchmarkdbpass) and hello_world, as a DBA
     would.
  2. `deploy/stack pg load` with PGHOST=127.0.0.1 PGPORT PGUSER PGPASSWORD
     PGDATABASE loads the schema and data into it (tfb-rules.md 10).
  3. `deploy/stack start` with the same variables (nginx, WORKERS=2): it
     must start no cluster of its own, and `status`, `env` and `psql` must
     name and reach the external server.
  4. The TFB verifier replica (tfb_verify.py) on every route, the siege
     -c 512 count windows reading pg_stat_statements on the external server
     as TFB's postgres.py does (TCP, benchmarkdbuser, password);
     pg_stat_activity there shows exactly WORKERS tfb-fcgi connections, as
     benchmarkdbuser to hello_world, over TCP from 127.0.0.1.
  5. `deploy/stack stop`: no worker left, no tfb-fcgi connection left on
     the external server, which still runs (the stack must not stop a
     server it does not own), the same postmaster as before.  Then the
     cluster is stopped and its directory removed.

The PG* variables of the caller's environment are dropped first: this
test says which server the stack uses.  TFB_TEST_WORKERS overrides
WORKERS (2).
"""

import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import tfb_stack_tests as ts  # noqa: E402
import tfb_verify as tv  # noqa: E402

OS_USER = "postgres"  # the cluster's owner when we are root
APP_USER, APP_PASSWORD, APP_DB = "benchmarkdbuser", "benchmarkdbpass", "hello_world"
ROLES_SQL = lib.REPO / "deploy" / "sql" / "roles.sql"


def is_root():
    return os.geteuid() == 0


def pg_bindir():
    """PG_BINDIR, else the newest /usr/lib/postgresql/*/bin (as deploy/stack)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                  key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    return dirs[-1] if dirs else Path("/usr/lib/postgresql/15/bin")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


# --------------------------------------------------------------------------
# The "existing" server

class ExternalPG:
    """A PostgreSQL cluster in a /tmp directory of its own, reached by the
    application over TCP with a password, by the test's superuser over its
    unix socket (trust, local only)."""

    CONF = """
# written by tests/integration/test_external_pg.py
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{base}'
unix_socket_permissions = 0700
max_connections = 200
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 10000
password_encryption = 'scram-sha-256'
synchronous_commit = off
# a throwaway test server: no need to wait for the disk
fsync = off
full_page_writes = off
"""

    HBA = """# written by tests/integration/test_external_pg.py
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
"""

    def __init__(self, tap):
        self.tap = tap
        self.bindir = pg_bindir()
        self.port = lib.free_port()
        self.base = tempfile.mkdtemp(prefix="tfb-test-extpg-server-", dir="/tmp")
        try:
            # The owner needs it for the data and the socket, we for psql's cwd.
            os.chmod(self.base, 0o755)
            if is_root():
                shutil.chown(self.base, OS_USER, OS_USER)
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise
        self.data = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "pg.log")
        self.started = False

    def _owner(self, argv, timeout):
        """A server-side command as the cluster's owner, from its directory."""
        if is_root():
            argv = ["runuser", "-u", OS_USER, "--"] + argv
        return lib.run(argv, timeout, cwd=self.base)

    def start(self):
        """initdb, configure, pg_ctl start; raises lib.StackError."""
        r = self._owner([str(self.bindir / "initdb"), "-D", self.data, "-U", "postgres",
                         "-E", "UTF8", "--no-locale", "--no-sync", "-A", "trust"], 60)
        if r.returncode != 0:
            raise lib.StackError("initdb exited %s:\n%s" % (r.returncode,
                                                          "\n".join(lib.tail(r.stdout))))
        # Appended to / written over the files initdb made, as their owner's.
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(self.CONF.format(port=self.port, base=self.base))
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write(self.HBA)
        self.started = True  # from here, stop() must run pg_ctl stop
        r = self._owner([str(self.bindir / "pg_ctl"), "start", "-D", self.data, "-l", self.log,
                         "-w", "-t", "60", "-s"], 90)
        if r.returncode != 0:
            raise lib.StackError("pg_ctl start exited %s:\n%s\n%s" % (
                r.returncode, "\n".join(lib.tail(r.stdout)), "\n".join(self.log_tail())))

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.postmaster_pid()
        return bool(pid) and lib.alive(pid)

    def stop(self):
        """pg_ctl stop -m fast (immediate, then SIGKILL of our postmaster,
        if that fails); then remove the directory.  True when it is gone."""
        if self.started and self.running():
            pid = self.postmaster_pid()
            r = self._owner([str(self.bindir / "pg_ctl"), "stop", "-D", self.data,
                             "-m", "fast", "-w", "-t", "30", "-s"], 45)
            if r.returncode != 0:
                self.tap.note("pg_ctl stop -m fast exited %s: %s"
                              % (r.returncode, " | ".join(lib.tail(r.stdout, 5))))
                self._owner([str(self.bindir / "pg_ctl"), "stop", "-D", self.data,
                             "-m", "immediate", "-w", "-t", "10", "-s"], 20)
            if pid and lib.alive(pid):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
                time.sleep(0.5)
        gone = not self.running()
        if os.environ.get("TFB_TEST_KEEP"):
            self.tap.note("kept the external cluster's directory %s" % self.base)
        else:
            shutil.rmtree(self.base, ignore_errors=True)
        self.started = False
        return gone

    def log_tail(self, n=15):
        try:
            return lib.tail(Path(self.log).read_text(errors="replace"), n)
        except OSError:
            return []

    # -- clients

    def app_env(self):
        """What the stack is given: TFB's connection settings (tfb-rules 9)."""
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": APP_USER,
                "PGPASSWORD": APP_PASSWORD, "PGDATABASE": APP_DB}

    def _psql(self, conn, sql=None, file=None, timeout=60, env=None):
        argv = [str(self.bindir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1"] + conn
        argv += ["-f", str(file)] if file else ["-c", sql]
        e = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        e.update(env or {})
        r = lib.run(argv, timeout, env=e, cwd=self.base)
        if r.returncode != 0:
            raise lib.StackError("psql %r exited %s: %s" % ((sql or str(file))[:80],
                                                           r.returncode,
                                                           " | ".join(lib.tail(r.stdout, 5))))
        return r.stdout.strip()

    def su(self, sql=None, db="postgres", file=None):
        """As the superuser "postgres" over the unix socket."""
        return self._psql(["-h", self.base, "-p", str(self.port), "-U", "postgres", "-d", db],
                          sql, file)

    def psql(self, sql):
        """As TFB's postgres.py reads its counters: TCP to 127.0.0.1, user
        benchmarkdbuser with its password, database hello_world."""
        return self._psql([], sql, env=self.app_env())

    def app_connections(self):
        """(all, over TCP from 127.0.0.1, as benchmarkdbuser to hello_world)
        backends with application_name tfb-fcgi."""
        out = self.su("SELECT count(*), "
                      "count(*) FILTER (WHERE client_addr = '127.0.0.1'::inet), "
                      "count(*) FILTER (WHERE usename = '%s' AND datname = '%s') "
                      "FROM pg_stat_activity WHERE application_name = '%s'"
                      % (APP_USER, APP_DB, lib.APP_NAME))
        return tuple(int(x) for x in out.split("|"))

    def app_connection_rows(self):
        try:
            return self.su("SELECT pid, usename, datname, client_addr, state, "
                           "left(query, 50) FROM pg_stat_activity WHERE application_name"
                           " = '%s'" % lib.APP_NAME).splitlines()[:20]
        except lib.StackError as e:
            return [str(e)]


# --------------------------------------------------------------------------
# Checks

def check_server(tap, pg):
    """The external server is what the test meant to make."""
    want = {"listen_addresses": "127.0.0.1", "port": str(pg.port),
            "unix_socket_directories": pg.base,
            "shared_preload_libraries": "pg_stat_statements",
            "pg_stat_statements.track": "all"}
    got = {}
    try:
        for name in list(want) + ["max_connections"]:
            got[name] = pg.su("SHOW %s" % name)
        rules = pg.su("SELECT type, address, auth_method FROM pg_hba_file_rules "
                      "WHERE type LIKE 'host%'").splitlines()
    except lib.StackError as e:
        tap.fail("external PostgreSQL: settings readable", str(e))
        return False
    bad = ["%s = %r, want %r" % (k, got.get(k), v) for k, v in want.items() if got.get(k) != v]
    if int(got.get("max_connections") or 0) < 100:
        bad.append("max_connections = %s, want >= 100" % got.get("max_connections"))
    if not rules or any(not r.endswith("|scram-sha-256") for r in rules):
        bad.append("host rules of pg_hba.conf: %s" % rules)
    return tap.check(not bad, "external PostgreSQL %s on 127.0.0.1:%d: pg_stat_statements "
                     "preloaded, track = all, max_connections %s, scram-sha-256 for TCP"
                     % (pg_version(pg), pg.port, got.get("max_connections")), bad)


def pg_version(pg):
    try:
        return pg.su("SHOW server_version").split()[0]
    except lib.StackError:
        return "?"


def check_password_needed(tap, pg):
    """TCP without the password is refused: the stack gets in only by the
    PGPASSWORD it is given."""
    env = dict(pg.app_env(), PGPASSFILE="/dev/null")
    del env["PGPASSWORD"]
    try:
        pg._psql(["-w"], "SELECT 1", env=env, timeout=20)
        tap.fail("external PostgreSQL refuses benchmarkdbuser over TCP without a password",
                 "psql without PGPASSWORD connected")
    except lib.StackError as e:
        tap.check(re.search(r"password|authentication", str(e)) is not None,
                  "external PostgreSQL refuses benchmarkdbuser over TCP without a password",
                  str(e))


def check_loaded(tap, pg):
    """tfb-rules 10: the four tables, their rows, the extension."""
    bad = []
    try:
        for table, n in (("world", 10000), ('"World"', 10000), ("fortune", 12),
                         ('"Fortune"', 12)):
            got = int(pg.psql("SELECT count(*) FROM %s" % table))
            if got != n:
                bad.append("%s: %d rows, want %d" % (table, got, n))
        rng = pg.psql("SELECT min(id), max(id), min(randomnumber) >= 1 AND "
                      "max(randomnumber) <= 10000 FROM world")
        if rng != "1|10000|t":
            bad.append("world: min(id)|max(id)|randomnumber in 1..10000 = %s" % rng)
        ext = pg.psql("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if ext != "1":
            bad.append("pg_stat_statements extension not created in %s" % APP_DB)
    except (lib.StackError, ValueError) as e:
        bad.append(str(e))
    return tap.check(not bad, "external PostgreSQL: world/\"World\" 10000 rows, "
                     "fortune/\"Fortune\" 12 rows, pg_stat_statements extension in %s"
                     % APP_DB, bad)


def embedded_postmasters(dirs):
    """postgres processes whose command line names one of dirs (a cluster
    the stack would have started under its VAR)."""
    out = []
    for pid in lib.all_pids():
        if os.path.basename(lib.proc_exe(pid).replace(" (deleted)", "")) != "postgres":
            continue
        args = cmdline(pid)
        if any(d in a for d in dirs for a in args):
            out.append("%d: %s" % (pid, " ".join(args)))
    return out


def check_no_embedded(tap, st, pg):
    dirs = st.var_dirs()
    procs = embedded_postmasters(dirs)
    pgdirs = [os.path.join(d, "pg") for d in dirs if os.path.exists(os.path.join(d, "pg"))]
    tap.check(not procs and not pgdirs,
              "no embedded cluster: no postgres process and no pg/ under VAR",
              ["postgres processes: %s" % procs, "pg directories: %s" % pgdirs])

    r = st.run("status", timeout=30)
    out = r.stdout or ""
    want = "external, answering at PGHOST=127.0.0.1 PGPORT=%d" % pg.port
    tap.check(r.returncode == 0 and want in out and "pg:    running" not in out,
              "deploy/stack status: pg external at 127.0.0.1:%d, pool and front running"
              % pg.port, ["exit %s" % r.returncode] + lib.tail(out, 6))

    env = st.pg_env()
    want_env = {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": APP_USER,
                "PGDATABASE": APP_DB}
    tap.check(all(env.get(k) == v for k, v in want_env.items()),
              "deploy/stack env names the external server", "got %s" % env)

    try:
        got = st.psql("SELECT inet_server_addr(), inet_server_port(), current_user, "
                      "current_database()")
    except lib.StackError as e:
        got = str(e)
    tap.check(got == "127.0.0.1|%d|%s|%s" % (pg.port, APP_USER, APP_DB),
              "deploy/stack psql reaches the external server over TCP as %s" % APP_USER,
              "got %r" % got)


def check_connections(tap, st, pg, workers, timeout=8):
    """Exactly WORKERS tfb-fcgi backends, all over TCP from 127.0.0.1,
    all benchmarkdbuser on hello_world."""
    want = (workers, workers, workers)
    got = ts.poll_connections(st, workers, pg.app_connections, want, timeout)
    return tap.check(got == want,
                     "external pg_stat_activity: %d connections with application_name %s, "
                     "all over TCP from 127.0.0.1 as %s to %s" % (workers, lib.APP_NAME,
                                                                  APP_USER, APP_DB),
                     ["got (all, from 127.0.0.1, %s/%s) = %s" % (APP_USER, APP_DB, got)]
                     + pg.app_connection_rows())


def check_after_stop(tap, st, pg, pids, postmaster):
    ts.check_stopped(tap, st, pids)
    strays = [p for p in lib.all_pids() if lib.is_app(p)
              and any(("VAR=" + d).encode() in lib.proc_environ(p) for d in st.var_dirs())]
    tap.check(not strays, "no tfb-fcgi process of this stack remains", "pids %s" % strays)

    deadline = time.monotonic() + 5
    while True:
        try:
            got = pg.app_connections()[0]
        except lib.StackError as e:
            got = str(e)
        if got == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    tap.check(got == 0, "external pg_stat_activity: no %s connection left after "
              "deploy/stack stop" % lib.APP_NAME,
              ["got %s" % got] + pg.app_connection_rows())

    try:
        alive = pg.psql("SELECT 1") == "1"
    except lib.StackError:
        alive = False
    tap.check(alive and pg.postmaster_pid() == postmaster and lib.alive(postmaster),
              "deploy/stack stop leaves the external server running (same postmaster)",
              ["answers: %s" % alive, "postmaster before %s, now %s"
               % (postmaster, pg.postmaster_pid())])


# --------------------------------------------------------------------------

def body(tap):
    if not lib.preflight(tap):
        return
    # This test chooses the server: none of the caller's PG* may leak into
    # the stack (PGAPPNAME, PGSSLMODE, PGSERVICE, a PGHOST of another one).
    dropped = sorted(k for k in os.environ if k.startswith("PG") and k != "PG_BINDIR")
    for k in dropped:
        del os.environ[k]
    if dropped:
        tap.note("ignoring the caller's %s" % ", ".join(dropped))

    workers = int(os.environ.get("TFB_TEST_WORKERS", "2"))
    t0 = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="tfb-test-extpg-siege-")
    pg = None
    st = None
    st_done = False  # the Stack's __exit__ ran (or its __enter__ cleaned up)
    exc = (None, None, None)
    try:
        # 1. The existing server.
        pg = ExternalPG(tap)
        try:
            pg.start()
        except lib.StackError as e:
            tap.fail("external PostgreSQL cluster starts (initdb, pg_ctl start)", str(e))
            return
        postmaster = pg.postmaster_pid()
        tap.ok("external PostgreSQL cluster started: %s, 127.0.0.1:%d, postmaster %s"
               % (pg.base, pg.port, postmaster))
        if not check_server(tap, pg):
            return
        try:
            pg.su(file=ROLES_SQL)
            tap.ok("deploy/sql/roles.sql as superuser: role %s, database %s"
                   % (APP_USER, APP_DB))
        except lib.StackError as e:
            tap.fail("deploy/sql/roles.sql as superuser", str(e))
            return
        check_password_needed(tap, pg)
        try:
            before = pg.psql("SELECT count(*) FROM pg_tables WHERE tablename IN "
                             "('world', 'fortune', 'World', 'Fortune')")
        except lib.StackError as e:
            before = str(e)
        tap.check(before == "0", "before the load, %s has none of the four tables" % APP_DB,
                  "got %r" % before)

        # 2. The schema, the documented way.
        st = lib.Stack(server="nginx", workers=workers, tap=tap, name="extpg",
                       env=pg.app_env())
        r = st.run("pg", "load", timeout=120)
        if not tap.check(r.returncode == 0,
                         "PGHOST=127.0.0.1 PGPORT=%d PGUSER=%s PGPASSWORD=... "
                         "PGDATABASE=%s deploy/stack pg load" % (pg.port, APP_USER, APP_DB),
                         ["exit %s" % r.returncode] + lib.tail(r.stdout, 10)):
            return
        if not check_loaded(tap, pg):
            return

        # 3. The stack on it.
        try:
            st.__enter__()
        except lib.StackError as e:
            st_done = True  # __enter__ stopped and cleaned up
            tap.fail("deploy/stack start with PGHOST=127.0.0.1 PGPORT=%d SERVER=nginx "
                     "WORKERS=%d" % (pg.port, workers), str(e))
            return
        tap.ok("deploy/stack start with PGHOST=127.0.0.1 PGPORT=%d SERVER=nginx WORKERS=%d "
               "PORT=%d" % (pg.port, workers, st.port))
        check_no_embedded(tap, st, pg)
        pids_before = st.worker_pids()
        tap.note("worker pids at start: %s" % pids_before)

        # 4. Every TFB rule on every route, counted on the external server.
        t1 = time.monotonic()
        v = tv.Verifier(st.url(""), psql=pg.psql, workdir=workdir, log=tap.note)
        for name, problems in v.verify_all():
            tap.problems("TFB %s" % name, problems)
        tap.note("TFB verifier replica took %.1f s" % (time.monotonic() - t1))
        check_connections(tap, st, pg, workers)
        ts.check_workers(tap, st, workers, pids_before)

        # 5. Stop the stack; the external server stays, without our clients.
        pids = st.worker_pids()
        st_done = True
        st.__exit__(None, None, None)
        check_after_stop(tap, st, pg, pids, postmaster)
    except BaseException:
        exc = sys.exc_info()
        raise
    finally:
        if st is not None and not st_done:
            # Stops whatever runs from VAR (also after a pg load alone) and
            # removes VAR.
            st.__exit__(*exc)
        if pg is not None:
            if tap.failed or exc[0] is not None:
                tap.note("--- %s (last 15 lines)" % pg.log, *pg.log_tail())
            gone = pg.stop()
            tap.check(gone and (not os.path.exists(pg.base) or os.environ.get("TFB_TEST_KEEP")),
                      "external PostgreSQL stopped, its directory removed",
                      ["postmaster running: %s" % (not gone), "%s exists: %s"
                       % (pg.base, os.path.exists(pg.base))])
        shutil.rmtree(workdir, ignore_errors=True)
        tap.note("test_external_pg took %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    lib.main(body, deadline=240)
