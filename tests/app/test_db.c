/*
 * test_db.c: the worker's PostgreSQL handle (app/db.c) against a real
 * server: a throwaway cluster started through deploy/stack (tests/pg.h),
 * loaded with deploy/sql.  What the handle reads is compared with what a
 * second connection of the test's own reads; statements are counted in
 * pg_stat_statements, as TechEmpower counts them.
 */
#include "../../app/db.c"

#include <netinet/in.h>
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
    PGresult *res;
    long n = -1;

    if (db->conn == NULL)
        return -1;
    res = PQexec(db->conn, "SELECT count(*) FROM pg_prepared_statements");
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
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
 * its port in *port.  Results: the socket, or -1.
 */
static int
listen_local(int *port)
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
            listen(fd, 4) == 0 &&
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

    if ((fd = listen_local(&port)) == -1) {
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
    test_cancelled(db);
    test_per_request();
    test_retry_in();
    test_target();
    test_hosts();
    test_closing_host();
    test_server_down(db);
    db_request_done(db);
    ok(db->conn != NULL, "persistent: db_request_done keeps the connection");
    db_free(db);
    PQfinish(peer);
    return done_testing();
}
