/*
 * test_db.c: the worker's PostgreSQL handle (app/db.c) against a real
 * server: a throwaway cluster started through deploy/stack (tests/pg.h),
 * loaded with deploy/sql.  What the handle reads is compared with what a
 * second connection of the test's own reads; statements are counted in
 * pg_stat_statements, as TechEmpower counts them.  The deadlines are tried
 * on the server stopped whole (SIGSTOP: its sockets stay open, nothing
 * answers), and on a TCP port that accepts and never answers.
 */
#include "../../app/db.c"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pg.h"

/* calls: how many times statement id ran, by pg_stat_statements. */
static long
calls(enum stmt_id id)
{
    return q_long("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                  "WHERE query = $1",
                  stmts[id].sql);
}

/* prepared: the statements prepared on the handle's own connection. */
static long
prepared(struct db *db)
{
    const char *n;

    if (db->conn == NULL)
        return -1;
    n = q_text(db->conn, "SELECT count(*) FROM pg_prepared_statements", NULL);
    return *n != '\0' ? atol(n) : -1;
}

static void
test_backoff(void)
{
    int ms = 0, steps = 0;

    is_int(next_backoff(0), DB_BACKOFF_MIN_MS,
           "the first backoff: the minimum");
    is_int(next_backoff(DB_BACKOFF_MIN_MS), 2 * DB_BACKOFF_MIN_MS,
           "then it doubles");
    while (ms < DB_BACKOFF_MAX_MS && steps++ < 100)
        ms = next_backoff(ms);
    is_int(ms, DB_BACKOFF_MAX_MS, "up to the maximum, exactly");
    is_int(next_backoff(DB_BACKOFF_MAX_MS), DB_BACKOFF_MAX_MS,
           "where it stays");
}

/*
 * The log goes to fd 2: capture it around the calls whose lines matter,
 * in a file of the cluster's directory, which goes with it.
 */
static char logpath[PATH_MAX];
static int saved_stderr = -1;

static void
capture(void)
{
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* captured: stop capturing; whether the lines hold text. */
static int
captured(const char *text)
{
    char buf[8192];
    FILE *fp;
    size_t n = 0;

    dup2(saved_stderr, STDERR_FILENO);
    if ((fp = fopen(logpath, "r")) != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
    if (strstr(buf, text) != NULL)
        return 1;
    printf("#   log: %s\n#   want: %s\n", buf, text);
    return 0;
}

static void
test_connect(struct db *db)
{
    long pid;

    capture();
    ok(db_new("nonsense", DB_PERSISTENT) == NULL,
       "db_new: a conninfo that does not parse gives no handle");
    ok(captured("error: db: bad connection string:"), "and one error line");

    is_int(db_connect(db), DB_OK, "db_connect through the PG* variables");
    pid = PQbackendPID(db->conn);
    ok(pid > 0, "a backend of its own (pid %ld)", pid);
    is_int(prepared(db), NSTMTS, "every statement prepared on connecting");
    is_int(q_long_int("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 "
                      "AND application_name = 'tfb-fcgi'",
                      pid),
           1, "application_name tfb-fcgi in pg_stat_activity");
    is_str(PQparameterStatus(db->conn, "client_encoding"), "UTF8",
           "client_encoding UTF8");
    is_int(db_connect(db), DB_OK, "db_connect again");
    is_int(PQbackendPID(db->conn), pid, "keeps the same connection");
}

static void
test_world_read(struct db *db)
{
    static const int32_t ids[] = {1, 17, 5000, 9999, 10000};
    struct world out[5];
    long before = calls(WORLD_READ);
    int i, same = 1, bad = 0;

    is_int(db_world_read(db, ids, 5, out), DB_OK, "db_world_read of 5 ids");
    for (i = 0; i < 5; i++)
        if (out[i].id != ids[i] ||
            out[i].random_number != random_number(ids[i]))
            same = 0;
    ok(same, "each id its own row, as a SELECT of the test's reads it");
    is_int(calls(WORLD_READ) - before, 5, "one SELECT per row");

    capture();
    bad += db_world_read(db, (const int32_t[]){0}, 1, out) == DB_ERROR;
    bad += db_world_read(db, (const int32_t[]){WORLD_ROWS + 1}, 1, out) ==
           DB_ERROR;
    ok(captured("error: db: world row 10001: 0 rows"),
       "a missing row is logged");
    is_int(bad, 2, "ids 0 and 10001, not in the table: DB_ERROR");
    is_int(db_world_read(db, ids, 0, out), DB_OK, "no ids: DB_OK");
    is_int(db_world_read(db, ids + 1, 1, out), DB_OK,
           "the connection serves on after an error");
}

static void
test_world_update(struct db *db)
{
    struct world rows[3] = {{300, 0}, {7, 0}, {150, 0}};
    long before = calls(WORLD_UPDATE), want[3];
    int i;

    /* New values, each unlike the row's current one. */
    for (i = 0; i < 3; i++) {
        want[i] = random_number(rows[i].id) % WORLD_ROWS + 1;
        rows[i].random_number = (int32_t)want[i];
    }
    is_int(db_world_update(db, rows, 3), DB_OK, "db_world_update of 3 rows");
    ok(rows[0].id == 7 && rows[1].id == 150 && rows[2].id == 300,
       "rows sorted by id in place");
    ok(rows[0].random_number == want[1] && rows[1].random_number == want[2] &&
           rows[2].random_number == want[0],
       "each value still with its id");
    ok(random_number(7) == want[1] && random_number(150) == want[2] &&
           random_number(300) == want[0],
       "committed: another connection sees the new values");
    is_int(calls(WORLD_UPDATE) - before, 1, "in one statement");
}

static void
test_fortunes(struct db *db)
{
    struct fortune *f = NULL;
    long count = q_long("SELECT count(*) FROM fortune", NULL);
    int n = -1, i, same = 1;

    is_int(db_fortunes(db, &f, &n), DB_OK, "db_fortunes");
    is_int(n, count, "every row of the table");
    is_int(n, 12, "twelve fortunes, as deploy/sql loads them");
    for (i = 0; i < n; i++) {
        PGresult *res;
        char id[16];
        const char *values[1] = {id};

        snprintf(id, sizeof(id), "%d", (int)f[i].id);
        res = PQexecParams(peer, "SELECT message FROM fortune WHERE id = $1", 1,
                           NULL, values, NULL, NULL, 0);
        if (PQntuples(res) != 1 || (size_t)PQgetlength(res, 0, 0) != f[i].len ||
            memcmp(PQgetvalue(res, 0, 0), f[i].message, f[i].len) != 0)
            same = 0;
        PQclear(res);
    }
    ok(same, "ids and messages byte for byte (UTF-8 included)");
    ok(db->fortunes_cap >= n + 1, "with room for one more");
    /* Under the sanitizer, a write past the array would stop here. */
    f[n].id = 0;
    f[n].message = "Additional fortune added at request time.";
    f[n].len = strlen(f[n].message);
    is_int(db_fortunes(db, &f, &n), DB_OK, "db_fortunes again");
    is_int(n, count, "the same rows");
}

static void
test_world_all(struct db *db)
{
    static struct world all[WORLD_ROWS];
    static long by_id[WORLD_ROWS + 1];
    PGresult *res;
    int n = -1, i, same = 1;

    res = PQexec(peer, "SELECT id, randomnumber FROM world");
    for (i = 0; i < PQntuples(res); i++)
        by_id[atoi(PQgetvalue(res, i, 0))] = atol(PQgetvalue(res, i, 1));
    PQclear(res);

    is_int(db_world_all(db, all, WORLD_ROWS, &n), DB_OK, "db_world_all");
    is_int(n, q_long("SELECT count(*) FROM world", NULL), "every row");
    for (i = 0; i < n; i++)
        if (all[i].id < 1 || all[i].id > WORLD_ROWS ||
            all[i].random_number != by_id[all[i].id])
            same = 0;
    ok(same, "each row as the test's SELECT reads it");
    is_int(db_world_all(db, all, 10, &n), DB_OK,
           "db_world_all with room for 10");
    is_int(n, 10, "ten rows");
    ok(all[9].id >= 1 && all[9].random_number == by_id[all[9].id], "real ones");
}

/*
 * test_terminated: the handle's backend killed from outside, as a
 * PostgreSQL restart or an administrator does, while the worker is idle.
 * A read learns of it, reconnects at once and reads again: the request
 * is answered.  Once per request only, and never a write.
 */
/* q_exec: a statement on peer; 0 or -1. */
static int
q_exec(const char *sql)
{
    PGresult *res = PQexec(peer, sql);
    int ok_ = PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok_)
        printf("# %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok_ ? 0 : -1;
}

/*
 * test_bad_values: what the database answers is checked before it is
 * read: a NULL, or a value of another length, is an error (a 500), never
 * memory read past what the server sent.
 */
static void
test_bad_values(struct db *db)
{
    struct world w[2];
    int32_t two[2] = {7, 8};
    long saved = random_number(7);

    if (q_exec("ALTER TABLE world ALTER COLUMN randomnumber DROP NOT NULL") ==
            -1 ||
        q_exec("UPDATE world SET randomnumber = NULL WHERE id = 7") == -1) {
        ok(0, "a NULL randomnumber for the test");
        return;
    }
    capture();
    is_int(db_world_read(db, two, 1, w), DB_ERROR,
           "a NULL randomNumber: DB_ERROR, not a number read from nowhere");
    ok(captured("unexpected shape"), "logged");
    is_int(db_world_read(db, two, 2, w), DB_ERROR,
           "in a pipeline too: DB_ERROR");
    is_int(db_world_read(db, two + 1, 1, w), DB_OK,
           "and the connection is in step: the next read works");
    q_exec("UPDATE world SET randomnumber = 1 WHERE id = 7");
    q_exec("ALTER TABLE world ALTER COLUMN randomnumber TYPE bigint");
    db_request_done(db);
    is_int(db_world_read(db, two, 1, w), DB_ERROR,
           "an int8 where an int4 is due: DB_ERROR");
    q_exec("ALTER TABLE world ALTER COLUMN randomnumber TYPE integer");
    q_long_int("UPDATE world SET randomnumber = $1 WHERE id = 7 RETURNING 1",
               saved);
    db_request_done(db);
}

static void
test_terminated(struct db *db)
{
    struct world w, rows[2] = {{1, 1}, {2, 2}};
    long pid = PQbackendPID(db->conn), pid2;
    int rc;

    is_int(q_long_int("SELECT pg_terminate_backend($1, 5000)::int", pid), 1,
           "the handle's backend terminated from another connection");
    capture();
    rc = db_world_read(db, (const int32_t[]){1}, 1, &w);
    ok(captured("warn: db: world_read: connection lost"), "one warning line");
    ok(captured("reconnected, trying again"), "then the retry, logged");
    is_int(rc, DB_OK, "the read is answered all the same");
    ok(w.id == 1, "with its row");
    ok(db->conn != NULL && PQbackendPID(db->conn) != pid,
       "on a new backend (%d)", db->conn ? PQbackendPID(db->conn) : 0);
    is_int(prepared(db), NSTMTS, "with its statements prepared again");

    pid2 = PQbackendPID(db->conn);
    is_int(q_long_int("SELECT pg_terminate_backend($1, 5000)::int", pid2), 1,
           "terminated again, within the same request");
    rc = db_world_read(db, (const int32_t[]){1}, 1, &w);
    is_int(rc, DB_UNAVAILABLE, "a second retry in one request: none");
    ok(db->conn == NULL, "the broken connection is closed at once");
    db_request_done(db);

    is_int(db_connect(db), DB_OK, "a new request connects");
    pid2 = PQbackendPID(db->conn);
    is_int(q_long_int("SELECT pg_terminate_backend($1, 5000)::int", pid2), 1,
           "terminated while idle once more");
    rc = db_world_update(db, rows, 2);
    is_int(rc, DB_UNAVAILABLE, "a write is never run twice: DB_UNAVAILABLE");
    db_request_done(db);
    rc = db_world_read(db, (const int32_t[]){1}, 1, &w);
    is_int(rc, DB_OK, "and the next request reads again");
    db_request_done(db);
}

/*
 * test_idle_ended: a connection the server ends between requests says so
 * on its socket (db_idle_fd readable); db_idle_check closes it with the
 * server's reason, and a new one is due at once, before any request.
 */
static void
test_idle_ended(struct db *db)
{
    struct pollfd p = {.events = POLLIN};
    struct world w = {0, 0};
    unsigned epoch;
    long pid;

    is_int(db_connect(db), DB_OK, "idle: connected");
    epoch = db_epoch(db);
    p.fd = db_idle_fd(db);
    ok(p.fd >= 0 && p.fd == PQsocket(db->conn),
       "db_idle_fd: the connection's socket");
    ok(poll(&p, 1, 100) == 0, "quiet while idle");
    is_int(db_idle_check(db), DB_OK, "db_idle_check on a quiet connection");
    ok(db->conn != NULL && db_epoch(db) == epoch,
       "the connection kept, its epoch the same");
    pid = PQbackendPID(db->conn);
    is_int(q_long_int("SELECT pg_terminate_backend($1, 5000)::int", pid), 1,
           "its backend terminated from another connection");
    ok(poll(&p, 1, 2000) == 1 && (p.revents & POLLIN),
       "its socket says so at once");
    capture();
    is_int(db_idle_check(db), DB_UNAVAILABLE, "db_idle_check: DB_UNAVAILABLE");
    ok(captured("warn: db: the connection ended while idle: FATAL:  "
                "terminating connection due to administrator command"),
       "one warning, with the server's reason");
    ok(db->conn == NULL && db_idle_fd(db) == -1 && db_epoch(db) != epoch,
       "the connection closed: no socket, another epoch");
    is_int(db_retry_in(db), 0, "a new connection due at once, no backoff");
    is_int(db_connect_start(db), DB_PENDING,
           "the loop starts it, without waiting");
    capture();
    is_int(db_world_read(db, (const int32_t[]){1}, 1, &w), DB_OK,
           "a read meanwhile finishes that attempt and is answered");
    ok(captured("info: db: connected again"), "logged as the recovery");
    ok(w.id == 1 && db->conn != NULL && db_connect_left(db) == -1,
       "with its row, the attempt over");
    db_request_done(db);
}

/*
 * test_cancelled: a pipelined read whose first statement is cancelled by
 * statement_timeout (a lock held on world) gives up at once, instead of
 * waiting for the statements queued behind it, each of which would wait
 * as long: n times the limit would outlast the request time limit.
 */
static void
test_cancelled(struct db *db)
{
    int32_t ids[20];
    struct world rows[20];
    PGresult *res;
    int64_t t;
    int i, rc;

    for (i = 0; i < 20; i++)
        ids[i] = i + 1;
    res = PQexec(db->conn, "SET statement_timeout = 200");
    PQclear(res);
    res = PQexec(peer, "BEGIN; LOCK TABLE world IN ACCESS EXCLUSIVE MODE");
    ok(PQresultStatus(res) == PGRES_COMMAND_OK,
       "another connection locks world");
    PQclear(res);
    capture();
    t = now_ms();
    rc = db_world_read(db, ids, 20, rows);
    t = now_ms() - t;
    ok(captured("a statement was cancelled, leaving the rest"),
       "the pipeline is left, logged");
    is_int(rc, DB_UNAVAILABLE,
           "a read of 20 rows past statement_timeout: "
           "DB_UNAVAILABLE");
    ok(t < 1500, "after one timeout of 200 ms, not twenty (%ld ms)", (long)t);
    ok(db->conn == NULL, "the connection goes with the statements left");
    res = PQexec(peer, "COMMIT");
    PQclear(res);
    db_request_done(db);
    is_int(db_world_read(db, ids, 20, rows), DB_OK,
           "the lock released, the next request reads on a new connection");
    db_request_done(db);
}

/*
 * test_server_down: the whole server stopped and started again.  While it
 * is down, attempts are spaced by the backoff, and calls in between do
 * not touch the network; once it is back, the next attempt succeeds.
 */
static void
test_server_down(struct db *db)
{
    struct world w;
    int64_t t, end;
    int rc, first, second, within;

    if (pg_stack("pg", "stop") != 0) {
        ok(0, "deploy/stack pg stop");
        return;
    }
    PQfinish(peer);
    peer = NULL;
    capture();
    rc = db_world_read(db, (const int32_t[]){1}, 1, &w);
    is_int(rc, DB_UNAVAILABLE, "server stopped: DB_UNAVAILABLE");
    rc = db_world_read(db, (const int32_t[]){1}, 1, &w);
    first = db->backoff_ms;
    /* Well within the backoff, whatever the machine's load. */
    t = db->next_try_ms;
    db->next_try_ms = now_ms() + 60000;
    within = db_world_read(db, (const int32_t[]){1}, 1, &w);
    ok(within == DB_UNAVAILABLE && db->backoff_ms == first,
       "a call within the backoff makes no attempt");
    db->next_try_ms = t;
    while (now_ms() <= t)
        sleep_ms(5);
    db_world_read(db, (const int32_t[]){1}, 1, &w);
    second = db->backoff_ms;
    ok(captured("warn: db: cannot connect (next try in 50 ms)"),
       "each failed attempt logs a warning");
    ok(rc == DB_UNAVAILABLE && first == DB_BACKOFF_MIN_MS &&
           second == 2 * DB_BACKOFF_MIN_MS,
       "attempts spaced by a backoff that doubles (%d ms, %d ms)", first,
       second);

    if (pg_stack("pg", "start") != 0) {
        ok(0, "deploy/stack pg start");
        return;
    }
    rc = DB_UNAVAILABLE;
    capture();
    for (end = now_ms() + 10000; rc != DB_OK && now_ms() < end;) {
        sleep_ms(10);
        rc = db_world_read(db, (const int32_t[]){1}, 1, &w);
    }
    ok(captured("info: db: connected again"), "the recovery is logged");
    is_int(rc, DB_OK, "server back: a call after the backoff succeeds");
    is_int(db->backoff_ms, 0, "and the backoff is reset");
    peer = PQconnectdb("");
}

/*
 * test_target: which server a handle accepts.  A session made read-only
 * by its options is what libpq sees of a standby (default_transaction_
 * read_only, reported by the server), so one server stands for both kinds.
 */
static void
test_target(void)
{
    static const char ro[] = "options='-c default_transaction_read_only=on'";
    char conninfo[256];
    struct db *db;

    db = db_new(ro, DB_PERSISTENT);
    db_set_target(db, "read-write");
    capture();
    is_int(db_connect(db), DB_UNAVAILABLE,
           "target read-write: a read-only server is refused");
    ok(captured("session is read-only"), "with libpq's reason logged");
    db_free(db);

    db = db_new(ro, DB_PERSISTENT);
    db_set_target(db, "prefer-standby");
    is_int(db_connect(db), DB_OK,
           "target prefer-standby: without a standby, any server serves");
    db_free(db);

    snprintf(conninfo, sizeof(conninfo), "%s target_session_attrs=any", ro);
    db = db_new(conninfo, DB_PERSISTENT);
    db_set_target(db, "read-write");
    is_int(db_connect(db), DB_OK, "the conninfo's target_session_attrs wins");
    db_free(db);

    setenv("PGTARGETSESSIONATTRS", "any", 1);
    db = db_new(ro, DB_PERSISTENT);
    db_set_target(db, "read-write");
    is_int(db_connect(db), DB_OK, "so does PGTARGETSESSIONATTRS");
    unsetenv("PGTARGETSESSIONATTRS");
    db_free(db);
}

/* show: a setting of db's own session, or "" when it cannot be read. */
static const char *
show(struct db *db, const char *name)
{
    char sql[64];

    snprintf(sql, sizeof(sql), "SHOW %s", name);
    return q_text(db->conn, sql, NULL);
}

/* shown: db connected, its session's setting is want (the check name). */
static void
shown(struct db *db, const char *setting, const char *want, const char *name)
{
    if (db_connect(db) == DB_OK)
        is_str(show(db, setting), want, name);
    else
        ok(0, "%s: no connection", name);
}

/*
 * test_session_options: db_set_statement_timeout gives the session its
 * statement_timeout and keeps what PGOPTIONS says; 0 gives it back to the
 * server's default; an options of the conninfo's own replaces both.
 */
static void
test_session_options(void)
{
    struct db *db;

    setenv("PGOPTIONS", "-c work_mem=64kB", 1);
    db = db_new(NULL, DB_PERSISTENT);
    is_int(db_set_statement_timeout(db, 1800), 0, "db_set_statement_timeout");
    shown(db, "statement_timeout", "1800ms",
          "the session's statement_timeout is 1800 ms");
    is_str(show(db, "work_mem"), "64kB", "and PGOPTIONS' work_mem stays");
    db_close(db);
    db_set_statement_timeout(db, 0);
    shown(db, "statement_timeout", "0",
          "0: the next connection has the server's default (none)");
    db_free(db);
    unsetenv("PGOPTIONS");

    db = db_new("options='-c statement_timeout=5s'", DB_PERSISTENT);
    db_set_statement_timeout(db, 1800);
    shown(db, "statement_timeout", "5s", "the conninfo's options win");
    db_free(db);
}

/*
 * test_hosts: a conninfo listing a dead host before a live one: libpq
 * tries them in turn, at the first connection and at each reconnection.
 */
static void
test_hosts(void)
{
    char conninfo[PATH_MAX + 64];
    struct world w;
    struct db *db;
    long pid;

    snprintf(conninfo, sizeof(conninfo), "host=%s/no-such-dir,%s", pg_var,
             getenv("PGHOST"));
    db = db_new(conninfo, DB_PERSISTENT);
    is_int(db_connect(db), DB_OK, "hosts a,b with a dead: connected to b");
    pid = db->conn ? PQbackendPID(db->conn) : 0;
    is_int(q_long_int("SELECT pg_terminate_backend($1, 5000)::int", pid), 1,
           "its backend terminated");
    capture();
    is_int(db_world_read(db, (const int32_t[]){5}, 1, &w), DB_OK,
           "the next read reconnects past the dead host and is answered");
    ok(captured("reconnected, trying again"), "the retry is logged");
    ok(db->conn != NULL && PQbackendPID(db->conn) != pid,
       "on a new backend of the live host");
    db_request_done(db);
    db_free(db);
}

/*
 * listen_local: a TCP socket listening on 127.0.0.1, on a port of
 * TFB_TEST_PORTS ("LO-HI") when it is set, else on one the kernel picks;
 * its port in *port.  Never accepted, it stands for a server that stalls:
 * the kernel completes backlog connections, and nothing answers them.
 * Results: the socket, or -1.
 */
static int
listen_local(int *port, int backlog)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    const char *range = getenv("TFB_TEST_PORTS");
    int fd, lo = 0, hi = 0, p;

    if (range == NULL || sscanf(range, "%d-%d", &lo, &hi) != 2)
        lo = hi = 0;
    for (p = lo; p <= hi; p++) {
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
            return -1;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons((uint16_t)p);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            listen(fd, backlog) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
            *port = ntohs(sa.sin_port);
            return fd;
        }
        close(fd);
    }
    return -1;
}

/*
 * test_closing_host: the first host accepts the connection and closes it
 * during the handshake, then listens no more, as PostgreSQL does in the
 * last moments of a shutdown.  libpq's walk through the hosts ends there;
 * the handle walks the list again, is refused by the first, and reaches
 * the second.
 */
static void
test_closing_host(void)
{
    char conninfo[PATH_MAX + 96];
    struct db *db;
    pid_t pid;
    int fd, port, c, st = 0;

    if ((fd = listen_local(&port, 4)) == -1) {
        ok(0, "a listening socket on 127.0.0.1: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    if ((pid = fork()) == 0) {
        c = accept(fd, NULL, NULL);
        close(fd); /* refused from now on */
        close(c);  /* then the handshake ends */
        _exit(0);
    }
    close(fd);
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1,%s port=%d,%s",
             getenv("PGHOST"), port, getenv("PGPORT"));
    db = db_new(conninfo, DB_PERSISTENT);
    is_int(db_connect(db), DB_OK,
           "a host closing the connection in its handshake, then refusing: "
           "the next host, on a second walk");
    waitpid(pid, &st, 0);
    db_free(db);
}

/*
 * db_retry_in: when an idle worker should try its lost connection again:
 * never while it holds one, has not needed one, or keeps none; after the
 * backoff, then at once; never again once connected.
 */
static void
test_retry_in(void)
{
    struct db *db = db_new("host=/nonexistent", DB_PERSISTENT);
    struct db *pr = db_new("host=/nonexistent", DB_PER_REQUEST);
    struct db *ok_db = db_new(NULL, DB_PERSISTENT);
    int64_t left;

    if (db == NULL || pr == NULL || ok_db == NULL) {
        ok(0, "db_new for db_retry_in");
        return;
    }
    ok(db_retry_in(NULL) == -1 && db_retry_in(db) == -1,
       "db_retry_in: -1 for NULL and for a handle that never tried");
    capture();
    is_int(db_connect(db), DB_UNAVAILABLE, "a server that is not there");
    ok(captured("cannot connect (next try in"), "logged, with the backoff");
    left = db_retry_in(db);
    ok(left > 0 && left <= DB_BACKOFF_MIN_MS,
       "db_retry_in: the backoff's time left (%lld ms)", (long long)left);
    sleep_ms(DB_BACKOFF_MIN_MS + 10);
    is_int(db_retry_in(db), 0, "then 0: try now");
    capture();
    db_connect(pr);
    captured("");
    ok(db_retry_in(pr) == -1, "-1 in per-request mode, which keeps none");
    is_int(db_connect(ok_db), DB_OK, "a server that is there");
    ok(db_retry_in(ok_db) == -1, "-1 while the handle holds its connection");
    db_free(db);
    db_free(pr);
    db_free(ok_db);
}

static void
test_per_request(void)
{
    struct db *db = db_new(NULL, DB_PER_REQUEST);
    struct world w, row = {42, 0};
    struct fortune *f;
    long pid;
    int n = 0;

    if (db == NULL) {
        ok(0, "db_new per-request");
        return;
    }
    is_int(db_world_read(db, (const int32_t[]){42}, 1, &w), DB_OK,
           "per-request: the first call connects");
    pid = PQbackendPID(db->conn);
    is_int(prepared(db), 0, "and prepares nothing");
    ok(w.id == 42 && w.random_number == random_number(42), "the row");
    db_request_done(db);
    ok(db->conn == NULL, "db_request_done closes the connection");
    is_int(db_fortunes(db, &f, &n), DB_OK, "the next request connects again");
    ok(db->conn != NULL && PQbackendPID(db->conn) != pid, "to a new backend");
    is_int(n, 12, "db_fortunes without prepared statements");
    pid = PQbackendPID(db->conn);
    db_request_done(db);
    row.random_number = (int32_t)(random_number(42) % WORLD_ROWS + 1);
    is_int(db_world_update(db, &row, 1), DB_OK, "db_world_update");
    ok(random_number(42) == row.random_number && PQbackendPID(db->conn) != pid,
       "committed, from a third backend");
    db_request_done(db);
    db_free(db);
}

/*
 * The deadlines.  SLACK_MS is what a loaded machine may add to a wait
 * that should end at its deadline; no check waits longer than that.
 */
#define SLACK_MS 700

static int frozen;

/* freeze, thaw: the whole server stopped (SIGSTOP), then resumed.  The
 * keeper (pg.h) resumes it too, should the program die in between. */
static int
freeze(void)
{
    int n = pg_signal(SIGSTOP);

    frozen = n > 0;
    return n;
}

static void
thaw(void)
{
    if (frozen)
        pg_signal(SIGCONT);
    frozen = 0;
}

/*
 * drive: db_connect_step until the connection settles, waiting on
 * db_pollfd at most db_connect_left each time, as a worker's event loop
 * would (10 s at most); *ms: how long it took.
 */
static int
drive(struct db *db, int rc, int64_t *ms)
{
    int64_t t = now_ms(), end = t + 10000;
    struct pollfd p;

    while (rc == DB_PENDING && now_ms() < end) {
        p.fd = db_pollfd(db, &p.events);
        p.revents = 0;
        poll(&p, 1, (int)db_connect_left(db));
        rc = db_connect_step(db);
    }
    *ms = now_ms() - t;
    return rc;
}

/*
 * test_idle_restart: the connection ends while idle and the loop's first
 * attempt fails (the server restarting: here an address that refuses):
 * the backoff runs, yet the next request makes one attempt itself, as it
 * would have had the end not been seen; the one after an outage's
 * failure does not.
 */
static void
test_idle_restart(struct db *db)
{
    struct pollfd p = {.events = POLLIN};
    struct world w = {0, 0};
    char refuse[64], *saved;
    int64_t ms;
    int fd, port = 0, rc;

    if (db_connect(db) != DB_OK || (fd = listen_tcp(&port)) == -1) {
        ok(0, "restart: set-up");
        return;
    }
    close(fd);
    p.fd = db_idle_fd(db);
    is_int(q_long_int("SELECT pg_terminate_backend($1, 5000)::int",
                      PQbackendPID(db->conn)),
           1, "restart: the backend terminated while idle");
    (void)poll(&p, 1, 2000);
    capture();
    is_int(db_idle_check(db), DB_UNAVAILABLE, "restart: seen while idle");
    snprintf(refuse, sizeof(refuse), "host=127.0.0.1 port=%d", port);
    saved = db->conninfo;
    db->conninfo = refuse;
    rc = drive(db, db_connect_start(db), &ms);
    db->conninfo = saved;
    ok(captured("cannot connect (next try in 50 ms)"),
       "restart: the loop's attempt refused, logged, the backoff begun");
    ok(rc == DB_UNAVAILABLE && db_retry_in(db) > 0,
       "restart: its backoff runs (%lld ms left)", (long long)db_retry_in(db));
    /* The loop tries again after its backoff, refused again, then backs
     * off as long as after several attempts. */
    db->next_try_ms = 0;
    db->conninfo = refuse;
    rc = drive(db, db_connect_start(db), &ms);
    db->conninfo = saved;
    is_int(rc, DB_UNAVAILABLE, "restart: the loop's second attempt refused");
    db->next_try_ms = now_ms() + 10000;
    is_int(db_world_read(db, (const int32_t[]){2}, 1, &w), DB_OK,
           "restart: the next read connects itself, backoff or not");
    ok(w.id == 2, "restart: with its row");
    db_request_done(db);

    /* An outage a request found (its own retry refused): the backoff
     * holds for the next request. */
    is_int(q_long_int("SELECT pg_terminate_backend($1, 5000)::int",
                      PQbackendPID(db->conn)),
           1, "outage: the backend terminated");
    db->conninfo = refuse;
    rc = db_world_read(db, (const int32_t[]){2}, 1, &w);
    db_request_done(db);
    ms = now_ms();
    is_int(db_world_read(db, (const int32_t[]){2}, 1, &w), DB_UNAVAILABLE,
           "outage: a read whose retry was refused, then the next: "
           "DB_UNAVAILABLE");
    ms = now_ms() - ms;
    db_request_done(db);
    db->conninfo = saved;
    ok(rc == DB_UNAVAILABLE && ms < 50 && db_retry_in(db) > 0,
       "outage: both unavailable, the second at once (%lld ms), within the "
       "backoff",
       (long long)ms);
    db->next_try_ms = 0;
    is_int(db_connect(db), DB_OK, "outage over: connected again");
}

/* param_at: where key is in p, the last time (the one libpq keeps), or
 * -1; its value in *val. */
static int
param_at(const struct params *p, const char *key, const char **val)
{
    int i, at = -1;

    for (i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0) {
            at = i;
            *val = p->vals[i];
        }
    return at;
}

/* live_option: the value libpq holds for key on conn, or "". */
static void
live_option(PGconn *conn, const char *key, char *out, size_t len)
{
    PQconninfoOption *opts = conn ? PQconninfo(conn) : NULL;
    const char *v = opt_val(opts, key);

    snprintf(out, len, "%s", v ? v : "");
    PQconninfoFree(opts);
}

/*
 * test_params: every connection carries keepalives and tcp_user_timeout,
 * ahead of the conninfo, which may override them; libpq takes them on a
 * unix socket, where it sets neither (test_tcp_socket: on TCP it does).
 */
static void
test_params(struct db *db)
{
    static const char *const want[][2] = {{"keepalives_idle", "10"},
                                          {"keepalives_interval", "2"},
                                          {"keepalives_count", "3"},
                                          {"tcp_user_timeout", "5000"}};
    struct db *own = db_new("tcp_user_timeout=9000", DB_PERSISTENT);
    struct params p;
    const char *v = NULL, *conninfo = NULL;
    char live[32];
    int i, at, dbname;

    base_params(own, &p);
    dbname = param_at(&p, "dbname", &conninfo);
    ok(dbname >= 0 && strcmp(conninfo, "tcp_user_timeout=9000") == 0,
       "the conninfo is among the parameters");
    for (i = 0; i < 4; i++) {
        at = param_at(&p, want[i][0], &v);
        ok(at >= 0 && at < dbname && strcmp(v, want[i][1]) == 0,
           "%s=%s, before the conninfo", want[i][0], want[i][1]);
    }
    live_option(db->conn, "tcp_user_timeout", live, sizeof(live));
    is_str(live, "5000", "the live connection holds tcp_user_timeout=5000");
    live_option(db->conn, "keepalives_idle", live, sizeof(live));
    is_str(live, "10", "and keepalives_idle=10");
    ok(db->conn != NULL && PQhost(db->conn)[0] == '/',
       "on a unix socket (%s), which libpq connects all the same",
       db->conn ? PQhost(db->conn) : "none");
    is_int(db_connect(own), DB_OK, "a conninfo with tcp_user_timeout=9000");
    live_option(own->conn, "tcp_user_timeout", live, sizeof(live));
    is_str(live, "9000", "overrides ours");
    db_free(own);
}

/* sockopt: an int option of fd, or -1. */
static int
sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);

    if (getsockopt(fd, level, name, &v, &len) == -1)
        return -1;
    return v;
}

/*
 * test_tcp_socket: a connection over TCP to a port that accepts and never
 * answers: its socket carries the kernel's deadlines, and the connect
 * gives up at the handle's bound.
 */
static void
test_tcp_socket(int stall_port)
{
    char conninfo[64];
    struct db *db;
    int64_t t, end, ms;
    short ev = 0;
    int rc, fd = -1;

    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d", stall_port);
    db = db_new(conninfo, DB_PERSISTENT);
    db_set_timeouts(db, 400, 0);
    t = now_ms();
    rc = db_connect_start(db);
    /* Until libpq has connected and waits for the server's answer. */
    for (end = t + 1000; rc == DB_PENDING && now_ms() < end;) {
        fd = db_pollfd(db, &ev);
        if (ev == POLLIN)
            break;
        poll(&(struct pollfd){fd, ev, 0}, 1, 10);
        rc = db_connect_step(db);
    }
    ok(rc == DB_PENDING && ev == POLLIN,
       "TCP: connected, waiting for an answer");
    is_int(sockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 5000,
           "TCP_USER_TIMEOUT 5000 ms on the socket");
    is_int(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1, "SO_KEEPALIVE");
    ok(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 10 &&
           sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 2 &&
           sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT) == 3,
       "keepalives: 10 s idle, 3 probes 2 s apart");
    capture();
    rc = drive(db, rc, &ms);
    ms = now_ms() - t;
    ok(captured("no answer within 400 ms"), "logged");
    ok(rc == DB_UNAVAILABLE && ms >= 400 && ms < 400 + SLACK_MS,
       "a server that never answers: given up at the bound, 400 ms (%lld ms)",
       (long long)ms);
    db_free(db);
}

/*
 * test_walk_stalled: hosts a,b where a accepts and never answers: b is
 * reached after a's own bound, not never (libpq's walk, under a single
 * deadline, would not get past a).  prefer-standby walks twice, standbys
 * first, and does not wait for a stalled host twice.
 */
static void
test_walk_stalled(int stall_port)
{
    char conninfo[PATH_MAX + 96];
    struct db *db;
    int64_t t;
    int rc;

    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1,%s port=%d,%s",
             getenv("PGHOST"), stall_port, getenv("PGPORT"));
    db = db_new(conninfo, DB_PERSISTENT);
    db_set_timeouts(db, 400, 0);
    capture();
    t = now_ms();
    rc = db_connect(db);
    t = now_ms() - t;
    ok(captured("info: db: connected, past: connection to server at "
                "\"127.0.0.1\", port"),
       "the host walked past is logged");
    ok(rc == DB_OK && t >= 400 && t < 400 + SLACK_MS,
       "hosts a,b, a stalled: b, after a's bound of 400 ms (%lld ms)",
       (long long)t);
    db_free(db);

    db = db_new(conninfo, DB_PERSISTENT);
    db_set_target(db, "prefer-standby");
    db_set_timeouts(db, 400, 0);
    capture();
    t = now_ms();
    rc = db_connect(db);
    t = now_ms() - t;
    ok(captured("server is not in hot standby mode"),
       "prefer-standby: the primary refused in the first pass");
    ok(rc == DB_OK && t >= 400 && t < 800,
       "then taken in the second, the stalled host not waited for twice "
       "(%lld ms)",
       (long long)t);
    db_free(db);
}

/* test_walk_plan: the lists split the way libpq reads them, or left to
 * libpq whole; each host's bound. */
static void
test_walk_plan(void)
{
    static const struct {
        const char *conninfo;
        int n;
    } cases[] = {
        {"host=a,b port=1,2", 2},
        {"host=a,b,c port=7", 3},
        {"host=a,b hostaddr=1.2.3.4,5.6.7.8", 2},
        {"host=a,,b", 0},
        {"host=a,b port=1,2,3", 0},
        {"host=a,b hostaddr=1.2.3.4", 0},
        {"host=a", 0},
        {"host=a,b service=x", 0},
        {"host=a,b target_session_attrs=nonsense", 0},
    };
    struct walk w;
    struct db *db;
    size_t i;
    int good = 1;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        db = db_new(cases[i].conninfo, DB_PERSISTENT);
        walk_plan(db, &w);
        if (w.n != cases[i].n) {
            printf("#   %s: %d hosts, want %d\n", cases[i].conninfo, w.n,
                   cases[i].n);
            good = 0;
        }
        walk_free(&w);
        db_free(db);
    }
    ok(good, "host lists: walked one by one, or left to libpq");
    db = db_new("host=a,b port=1,2 target_session_attrs=read-write",
                DB_PERSISTENT);
    db_set_target(db, "prefer-standby");
    walk_plan(db, &w);
    ok(w.n == 2 && strcmp(w.host[1], "b") == 0 && strcmp(w.port[1], "2") == 0 &&
           strcmp(w.target, "read-write") == 0,
       "host b, port 2; the conninfo's target wins over the handle's");
    walk_free(&w);
    db_free(db);
    is_int(host_bound_ms(2000, NULL), 2000, "each host: ours, 2 s");
    is_int(host_bound_ms(5000, "3"), 3000, "or connect_timeout if shorter");
    is_int(host_bound_ms(2000, "9"), 2000, "not if longer");
    is_int(host_bound_ms(5000, "1"), 2000, "libpq reads 1 s as 2");
    ok(host_bound_ms(5000, "0") == 5000 && host_bound_ms(5000, "x") == 5000,
       "0 or nonsense: none");
}

/*
 * test_async_connect: the connection made step by step, as the worker's
 * loop will: a socket to wait on, a deadline, no wait inside a call.
 */
static void
test_async_connect(void)
{
    struct db *db = db_new(NULL, DB_PERSISTENT);
    struct world w;
    int64_t left, ms;
    short ev = 0;
    int rc, fd;

    rc = db_connect_start(db);
    fd = db_pollfd(db, &ev);
    left = db_connect_left(db);
    is_int(rc, DB_PENDING, "db_connect_start: under way");
    ok(fd >= 0 && (ev & (POLLIN | POLLOUT)) != 0,
       "db_pollfd: a socket (%d) and what to wait for", fd);
    ok(left > 0 && left <= DB_CONNECT_TIMEOUT_MS,
       "db_connect_left: within the default bound (%lld ms)", (long long)left);
    is_int(db_retry_in(db), -1, "db_retry_in: -1 while connecting");
    is_int(db_connect_start(db), DB_PENDING, "started once only");
    is_int(db_connect(db), DB_UNAVAILABLE,
           "db_connect does not wait for a connection under way");
    rc = drive(db, rc, &ms);
    is_int(rc, DB_OK, "db_connect_step: connected");
    ok(db_pollfd(db, &ev) == -1 && db_connect_left(db) == -1,
       "then no socket to wait on, no deadline");
    is_int(prepared(db), NSTMTS, "every statement prepared, in a pipeline");
    is_int(db->st_ms, 0, "no statement_timeout on this server");
    is_int(db_world_read(db, (const int32_t[]){3}, 1, &w), DB_OK, "and reads");
    is_int(db_connect_start(db), DB_OK, "db_connect_start when connected");
    db_free(db);
}

/*
 * test_statement_timeout: the answer's deadline sits above statement_
 * timeout: a statement blocked on a lock is cancelled by the server at
 * statement_timeout, the client's shorter deadline notwithstanding, and
 * the connection, in step, is kept.
 */
static void
test_statement_timeout(void)
{
    struct db *db = db_new("options='-c statement_timeout=600'", DB_PERSISTENT);
    struct world w;
    PGresult *res;
    int64_t t;
    long pid;
    int rc;

    db_set_timeouts(db, 0, 200);
    is_int(db_connect(db), DB_OK, "a session with statement_timeout=600");
    is_int(db->st_ms, 600, "read on connecting");
    is_int(answer_ms(db), 700,
           "the answer's deadline: 600 + 100 ms, not the 200 ms asked");
    pid = db->conn ? PQbackendPID(db->conn) : 0;
    res = PQexec(peer, "BEGIN; LOCK TABLE world IN ACCESS EXCLUSIVE MODE");
    PQclear(res);
    capture();
    t = now_ms();
    rc = db_world_read(db, (const int32_t[]){1}, 1, &w);
    t = now_ms() - t;
    ok(captured("canceling statement due to statement timeout"),
       "a read blocked on a lock: the server cancels it");
    ok(rc == DB_UNAVAILABLE && t >= 550 && t < 600 + SLACK_MS,
       "DB_UNAVAILABLE at statement_timeout (%lld ms)", (long long)t);
    ok(db->conn != NULL && PQbackendPID(db->conn) == pid,
       "the connection is kept");
    res = PQexec(peer, "COMMIT");
    PQclear(res);
    is_int(db_world_read(db, (const int32_t[]){1}, 1, &w), DB_OK,
           "and serves the next read");
    ok(db->conn != NULL && PQbackendPID(db->conn) == pid,
       "on the same backend");
    db_free(db);

    db = db_new(NULL, DB_PERSISTENT);
    is_int(answer_ms(db), DB_TIMEOUT_MS, "without statement_timeout: 5 s");
    db_set_timeouts(db, 0, 200);
    is_int(answer_ms(db), 200, "or as told");
    db->st_ms = 1800;
    is_int(answer_ms(db), 1900, "raised above a statement_timeout");
    db_set_timeouts(db, 0, 0);
    is_int(answer_ms(db), 1900, "which is the default then");
    db_set_timeouts(db, 0, 5000);
    is_int(answer_ms(db), 5000, "a longer deadline stays");
    db_free(db);
}

enum call { READ_ONE, READ_PIPELINE, UPDATE, FORTUNES, ALL };

static int
call(struct db *db, enum call c)
{
    static const int32_t ids[5] = {1, 2, 3, 4, 5};
    static struct world all[WORLD_ROWS];
    struct world w[5], rows[2] = {{11, 1}, {12, 2}};
    struct fortune *f;
    int n;

    switch (c) {
    case READ_ONE:
        return db_world_read(db, ids, 1, w);
    case READ_PIPELINE:
        return db_world_read(db, ids, 5, w);
    case UPDATE:
        return db_world_update(db, rows, 2);
    case FORTUNES:
        return db_fortunes(db, &f, &n);
    case ALL:
        return db_world_all(db, all, WORLD_ROWS, &n);
    }
    return DB_ERROR;
}

/* stopped_call: c on a connection whose server stops: DB_UNAVAILABLE at
 * the answer's deadline (500 ms), the connection closed. */
static void
stopped_call(struct db *db, enum call c, const char *name)
{
    int64_t t;
    int rc;

    db->next_try_ms = 0;
    if (db_connect(db) != DB_OK || freeze() <= 0) {
        thaw();
        ok(0, "%s: connected, then the server stopped", name);
        return;
    }
    capture();
    t = now_ms();
    rc = call(db, c);
    t = now_ms() - t;
    thaw();
    ok(captured("no answer within 500 ms; connection closed"), "%s: logged",
       name);
    ok(rc == DB_UNAVAILABLE && t >= 500 && t < 500 + SLACK_MS,
       "%s, the server stopped: DB_UNAVAILABLE at its deadline, 500 ms "
       "(%lld ms)",
       name, (long long)t);
    ok(db->conn == NULL && db->backoff_ms == DB_BACKOFF_MIN_MS,
       "%s: the connection closed, the backoff started", name);
    db_request_done(db);
}

/*
 * test_stopped: the server stopped whole, its connections up: one call
 * pays the answer's deadline, the calls after it answer at once without
 * the network, a connection attempt gives up at its bound, and once the
 * server resumes the handle connects again.
 */
static void
test_stopped(void)
{
    struct db *db = db_new(NULL, DB_PERSISTENT);
    struct fortune *f;
    struct world w;
    int64_t t;
    int rc, n;

    db_set_timeouts(db, 400, 500);
    is_int(db_connect(db), DB_OK, "deadlines: connect 400 ms, answers 500 ms");
    stopped_call(db, READ_ONE, "/db's read");
    stopped_call(db, READ_PIPELINE, "/queries' pipeline");
    stopped_call(db, UPDATE, "/updates' write");
    stopped_call(db, FORTUNES, "/fortunes' read");
    stopped_call(db, ALL, "the cache's fill");

    db->next_try_ms = 0;
    is_int(db_connect(db), DB_OK, "connected again");
    ok(freeze() > 1, "the server stopped: its postmaster and children");
    capture();
    is_int(call(db, READ_ONE), DB_UNAVAILABLE, "one call pays the deadline");
    t = now_ms();
    db->next_try_ms = t + 60000; /* the backoff, whatever the load */
    rc = db_world_read(db, (const int32_t[]){1}, 1, &w) == DB_UNAVAILABLE &&
         db_fortunes(db, &f, &n) == DB_UNAVAILABLE &&
         db_world_update(db, &w, 1) == DB_UNAVAILABLE;
    t = now_ms() - t;
    ok(rc && t < 50 && !db->dial.active && db->backoff_ms == DB_BACKOFF_MIN_MS,
       "the calls after it: DB_UNAVAILABLE at once, no attempt (%lld ms)",
       (long long)t);
    captured("");

    db->next_try_ms = 0;
    capture();
    rc = drive(db, db_connect_start(db), &t);
    ok(rc == DB_UNAVAILABLE && t >= 400 && t < 400 + SLACK_MS,
       "db_connect_start/step: given up at the bound, 400 ms (%lld ms)",
       (long long)t);
    ok(db_pollfd(db, &(short){0}) == -1 && db_retry_in(db) > 0,
       "no socket left; the backoff started");
    db->next_try_ms = 0;
    t = now_ms();
    rc = db_connect(db);
    t = now_ms() - t;
    ok(rc == DB_UNAVAILABLE && t >= 400 && t < 400 + SLACK_MS,
       "db_connect too (%lld ms)", (long long)t);
    ok(captured("cannot connect (next try in 200 ms): connection to server "
                "on socket"),
       "each attempt logged, with the backoff doubling");
    thaw();

    db->next_try_ms = 0;
    capture();
    rc = drive(db, db_connect_start(db), &t);
    is_int(rc, DB_OK, "the server resumed: connected again");
    ok(captured("info: db: connected again"), "logged");
    is_int(prepared(db), NSTMTS, "with its statements");
    is_int(db_world_read(db, (const int32_t[]){1}, 1, &w), DB_OK, "reading");
    db_request_done(db);
    db_free(db);
}

/* test_deadlines: every wait of the handle bounded (db.h's table). */
static void
test_deadlines(struct db *db)
{
    int fd, port;

    test_params(db);
    test_walk_plan();
    test_async_connect();
    test_statement_timeout();
    if ((fd = listen_local(&port, 64)) == -1) {
        ok(0, "a listening socket on 127.0.0.1: %s", strerror(errno));
    } else {
        test_tcp_socket(port);
        test_walk_stalled(port);
        close(fd);
    }
    test_stopped();
}

int
main(void)
{
    struct db *db;

    log_init("test_db", LOG_INFO);
    test_backoff();
    saved_stderr = dup(STDERR_FILENO);
    if (pg_peer() == -1) {
        ok(0, "a PostgreSQL cluster for the test, and a connection to it");
        return done_testing();
    }
    snprintf(logpath, sizeof(logpath), "%s/test_db.log", pg_var);
    if ((db = db_new(NULL, DB_PERSISTENT)) == NULL) {
        ok(0, "db_new");
        return done_testing();
    }
    test_connect(db);
    test_world_read(db);
    test_world_update(db);
    test_fortunes(db);
    test_world_all(db);
    test_bad_values(db);
    test_terminated(db);
    test_idle_ended(db);
    test_idle_restart(db);
    test_cancelled(db);
    test_per_request();
    test_retry_in();
    test_target();
    test_session_options();
    test_hosts();
    test_closing_host();
    test_deadlines(db);
    test_server_down(db);
    db_request_done(db);
    ok(db->conn != NULL, "persistent: db_request_done keeps the connection");
    db_free(db);
    PQfinish(peer);
    return done_testing();
}
