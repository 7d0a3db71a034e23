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
import tempfile
import time

from ..kit import APP_BIN, APP_NAME, REPO, STACK, proc, stack, verify as tv, web
from ..kit.cmd import tail
from ..kit.pg import APP_DB, APP_PASSWORD, APP_USER, Cluster
from ..kit.stack import StackError
from ..kit.tap import main

ROLES_SQL = REPO / "deploy" / "sql" / "roles.sql"


# --------------------------------------------------------------------------
# The "existing" server

class ExternalPG(Cluster):
    """A PostgreSQL cluster in a /tmp directory of its own, reached by the
    application over TCP with a password, by the test's superuser over its
    unix socket (trust, local only)."""

    def __init__(self):
        super().__init__(tempfile.mkdtemp(prefix="tfb-test-extpg-server-", dir="/tmp"),
                         web.free_port(),
                         hba="local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
                         settings={"unix_socket_permissions": "0700",
                                   "password_encryption": "scram-sha-256"})

    def app_env(self):
        """What the stack is given: TFB's connection settings (tfb-rules 9)."""
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": APP_USER,
                "PGPASSWORD": APP_PASSWORD, "PGDATABASE": APP_DB}

    def app_psql(self, sql):
        """As TFB's postgres.py reads its counters: TCP to 127.0.0.1, user
        benchmarkdbuser with its password, database hello_world."""
        return self.psql(sql, conn=[], env=self.app_env())

    def app_connections(self):
        """(all, over TCP from 127.0.0.1, as benchmarkdbuser to hello_world)
        backends with application_name tfb-fcgi."""
        out = self.psql("SELECT count(*), "
                        "count(*) FILTER (WHERE client_addr = '127.0.0.1'::inet), "
                        "count(*) FILTER (WHERE usename = '%s' AND datname = '%s') "
                        "FROM pg_stat_activity WHERE application_name = '%s'"
                        % (APP_USER, APP_DB, APP_NAME))
        return tuple(int(x) for x in out.split("|"))

    def app_connection_rows(self):
        try:
            return self.psql("SELECT pid, usename, datname, client_addr, state, "
                             "left(query, 50) FROM pg_stat_activity WHERE application_name"
                             " = '%s'" % APP_NAME).splitlines()[:20]
        except StackError as e:
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
            got[name] = pg.psql("SHOW %s" % name)
        rules = pg.psql("SELECT type, address, auth_method FROM pg_hba_file_rules "
                      "WHERE type LIKE 'host%'").splitlines()
    except StackError as e:
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
        return pg.psql("SHOW server_version").split()[0]
    except StackError:
        return "?"


def check_password_needed(tap, pg):
    """TCP without the password is refused: the stack gets in only by the
    PGPASSWORD it is given."""
    env = dict(pg.app_env(), PGPASSFILE="/dev/null")
    del env["PGPASSWORD"]
    try:
        pg.psql("SELECT 1", conn=["-w"], env=env, timeout=20)
        tap.fail("external PostgreSQL refuses benchmarkdbuser over TCP without a password",
                 "psql without PGPASSWORD connected")
    except StackError as e:
        tap.check(re.search(r"password|authentication", str(e)) is not None,
                  "external PostgreSQL refuses benchmarkdbuser over TCP without a password",
                  str(e))


def check_loaded(tap, pg):
    """tfb-rules 10: the four tables, their rows, the extension."""
    bad = []
    try:
        for table, n in (("world", 10000), ('"World"', 10000), ("fortune", 12),
                         ('"Fortune"', 12)):
            got = int(pg.app_psql("SELECT count(*) FROM %s" % table))
            if got != n:
                bad.append("%s: %d rows, want %d" % (table, got, n))
        rng = pg.app_psql("SELECT min(id), max(id), min(randomnumber) >= 1 AND "
                      "max(randomnumber) <= 10000 FROM world")
        if rng != "1|10000|t":
            bad.append("world: min(id)|max(id)|randomnumber in 1..10000 = %s" % rng)
        ext = pg.app_psql("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if ext != "1":
            bad.append("pg_stat_statements extension not created in %s" % APP_DB)
    except (StackError, ValueError) as e:
        bad.append(str(e))
    return tap.check(not bad, "external PostgreSQL: world/\"World\" 10000 rows, "
                     "fortune/\"Fortune\" 12 rows, pg_stat_statements extension in %s"
                     % APP_DB, bad)


def embedded_postmasters(dirs):
    """postgres processes whose command line names one of dirs (a cluster
    the stack would have started under its VAR)."""
    out = []
    for pid in proc.all_pids():
        if os.path.basename(proc.exe(pid)) != "postgres":
            continue
        args = proc.cmdline(pid)
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
              % pg.port, ["exit %s" % r.returncode] + tail(out, 6))

    env = st.pg_env()
    want_env = {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": APP_USER,
                "PGDATABASE": APP_DB}
    tap.check(all(env.get(k) == v for k, v in want_env.items()),
              "deploy/stack env names the external server", "got %s" % env)

    try:
        got = st.psql("SELECT inet_server_addr(), inet_server_port(), current_user, "
                      "current_database()")
    except StackError as e:
        got = str(e)
    tap.check(got == "127.0.0.1|%d|%s|%s" % (pg.port, APP_USER, APP_DB),
              "deploy/stack psql reaches the external server over TCP as %s" % APP_USER,
              "got %r" % got)


def check_connections(tap, st, pg, workers, timeout=8):
    """Exactly WORKERS tfb-fcgi backends, all over TCP from 127.0.0.1,
    all benchmarkdbuser on hello_world."""
    want = (workers, workers, workers)
    got = stack.poll_connections(st, workers, pg.app_connections, want, timeout)
    return tap.check(got == want,
                     "external pg_stat_activity: %d connections with application_name %s, "
                     "all over TCP from 127.0.0.1 as %s to %s" % (workers, APP_NAME,
                                                                  APP_USER, APP_DB),
                     ["got (all, from 127.0.0.1, %s/%s) = %s" % (APP_USER, APP_DB, got)]
                     + pg.app_connection_rows())


def check_after_stop(tap, st, pg, pids, postmaster):
    stack.check_gone(tap, pids, st.port, "deploy/stack stop: the workers")
    strays = [p for p in proc.all_pids() if stack.is_app(p)
              and any(("VAR=" + d).encode() in proc.environ(p) for d in st.var_dirs())]
    tap.check(not strays, "no tfb-fcgi process of this stack remains", "pids %s" % strays)

    deadline = time.monotonic() + 5
    while True:
        try:
            got = pg.app_connections()[0]
        except StackError as e:
            got = str(e)
        if got == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    tap.check(got == 0, "external pg_stat_activity: no %s connection left after "
              "deploy/stack stop" % APP_NAME,
              ["got %s" % got] + pg.app_connection_rows())

    try:
        alive = pg.app_psql("SELECT 1") == "1"
    except StackError:
        alive = False
    tap.check(alive and pg.postmaster_pid() == postmaster and proc.alive(postmaster),
              "deploy/stack stop leaves the external server running (same postmaster)",
              ["answers: %s" % alive, "postmaster before %s, now %s"
               % (postmaster, pg.postmaster_pid())])


# --------------------------------------------------------------------------

def body(tap):
    tap.need([APP_BIN, STACK])
    # This test chooses the server: none of the caller's PG* may leak into
    # the stack (PGAPPNAME, PGSSLMODE, PGSERVICE, a PGHOST of another one).
    dropped = sorted(k for k in os.environ if k.startswith("PG") and k != "PG_BINDIR")
    for k in dropped:
        del os.environ[k]
    if dropped:
        tap.note("ignoring the caller's %s" % ", ".join(dropped))
    t0 = time.monotonic()
    pg = ExternalPG()
    try:
        with tempfile.TemporaryDirectory(prefix="tfb-test-extpg-siege-") as workdir:
            on_external(tap, pg, workdir)
    finally:
        if tap.failed:
            tap.note("--- %s (last 15 lines)" % pg.log, *pg.log_tail())
        gone = pg.remove()
        tap.check(gone and (not os.path.exists(pg.base) or os.environ.get("TFB_TEST_KEEP")),
                  "external PostgreSQL stopped, its directory removed",
                  ["postmaster running: %s" % (not gone), "%s exists: %s"
                   % (pg.base, os.path.exists(pg.base))])
        tap.note("test_external_pg took %.1f s" % (time.monotonic() - t0))


def on_external(tap, pg, workdir):
    """1. The existing server, 2. the schema loaded the documented way,
    3. the stack on it, 4. every TFB rule counted on it, 5. the stop."""
    try:
        pg.initdb()
        pg.start()
        err = ""
    except StackError as e:
        err = str(e)
    postmaster = pg.postmaster_pid()
    if not tap.check(not err and postmaster and proc.alive(postmaster),
                     "external PostgreSQL cluster started: %s, 127.0.0.1:%d, postmaster %s"
                     % (pg.base, pg.port, postmaster), err) or not check_server(tap, pg):
        return
    try:
        pg.psql(file=ROLES_SQL)
        roles = pg.psql("SELECT count(*) FROM pg_roles WHERE rolname = '%s'" % APP_USER)
        err = ""
    except StackError as e:
        roles, err = "0", str(e)
    if not tap.check(roles == "1", "deploy/sql/roles.sql as superuser: role %s, database %s"
                     % (APP_USER, APP_DB), err):
        return
    check_password_needed(tap, pg)
    try:
        before = pg.app_psql("SELECT count(*) FROM pg_tables WHERE tablename IN "
                             "('world', 'fortune', 'World', 'Fortune')")
    except StackError as e:
        before = str(e)
    tap.check(before == "0", "before the load, %s has none of the four tables" % APP_DB,
              "got %r" % before)

    workers = int(os.environ.get("TFB_TEST_WORKERS", "2"))
    st = stack.Stack(server="nginx", workers=workers, tap=tap, name="extpg",
                     env=pg.app_env())
    try:
        r = st.run("pg", "load", timeout=120)
        if not tap.check(r.returncode == 0,
                         "PGHOST=127.0.0.1 PGPORT=%d PGUSER=%s PGPASSWORD=... "
                         "PGDATABASE=%s deploy/stack pg load" % (pg.port, APP_USER, APP_DB),
                         ["exit %s" % r.returncode] + tail(r.stdout, 10)) \
                or not check_loaded(tap, pg):
            return
    finally:
        st.cleanup()
    with stack.started(tap, server="nginx", workers=workers, name="extpg",
                       env=pg.app_env()) as st:
        if not st:
            return
        check_no_embedded(tap, st, pg)
        pids_before = st.worker_pids()
        tap.note("worker pids at start: %s" % pids_before)
        t1 = time.monotonic()
        v = tv.Verifier(st.url(""), psql=pg.app_psql, workdir=workdir, log=tap.note)
        for name, problems in v.verify_all():
            tap.problems("TFB %s" % name, problems)
        tap.note("TFB verifier replica took %.1f s" % (time.monotonic() - t1))
        check_connections(tap, st, pg, workers)
        stack.check_workers(tap, st, workers, pids_before)
        pids = st.worker_pids()
    check_after_stop(tap, st, pg, pids, postmaster)


if __name__ == "__main__":
    main(body, deadline=240)
