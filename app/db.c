/*
 * db.c: see db.h.
 */
#include "db.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "scoreboard.h"

/* Type OIDs of the binary parameters we send (pg_type.h). */
#define INT4OID 23

enum stmt_id { WORLD_READ, WORLD_UPDATE, WORLD_ALL, FORTUNE_ALL, NSTMTS };

/*
 * Every statement the routes run.  Each row is read by its own statement
 * (TechEmpower counts them in pg_stat_statements); the update is one
 * statement for all rows of a request, and carries no SELECT in its text so
 * that it is not counted as a read.
 */
static const struct stmt {
    const char *name;
    const char *sql;
    int nparams;
    Oid types[2];
    int reads; /* changes nothing: safe to run again */
} stmts[NSTMTS] = {
    [WORLD_READ] = {"world_read",
                    "SELECT id, randomnumber FROM world WHERE id = $1",
                    1,
                    {INT4OID},
                    1},
    [WORLD_UPDATE] = {"world_update",
                      "UPDATE world SET randomnumber = v.r "
                      "FROM unnest($1::int[], $2::int[]) AS v(id, r) "
                      "WHERE world.id = v.id",
                      2,
                      {0},
                      0},
    [WORLD_ALL] =
        {"world_all", "SELECT id, randomnumber FROM world", 0, {0}, 1},
    [FORTUNE_ALL] =
        {"fortune_all", "SELECT id, message FROM fortune", 0, {0}, 1},
};

struct db {
    PGconn *conn;
    char *conninfo; /* NULL: the PG* environment alone */
    enum db_mode mode;
    const char *target;  /* target_session_attrs, unless told; or NULL */
    char *options;       /* libpq's options, statement_timeout's; or NULL */
    int64_t next_try_ms; /* no connection attempt before this */
    int backoff_ms;      /* 0 while the last attempt succeeded */
    int lost;            /* the connection was lost: log the recovery */
    int broke;           /* the last failure was the connection itself */
    int retried;         /* this request has reconnected once already */
    char sqlstate[6];    /* of the last statement that failed */
    PGresult *fortunes_res;
    struct fortune *fortunes;
    int fortunes_cap;
    struct buf ids, values; /* the update's array literals */
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * in_database, out_of_database: the request's time from here on is the
 * database's, then the application's again (scoreboard.h's phases).
 */
static void
in_database(void)
{
    sb_phase(sb_self(), SB_DATABASE);
}

static int
out_of_database(int rc)
{
    sb_phase(sb_self(), SB_RENDERING);
    return rc;
}

struct db *
db_new(const char *conninfo, enum db_mode mode)
{
    PQconninfoOption *opts;
    struct db *db;
    char *errmsg = NULL;

    if (conninfo != NULL) {
        if ((opts = PQconninfoParse(conninfo, &errmsg)) == NULL) {
            log_err("db: bad connection string: %s",
                    errmsg ? errmsg : "out of memory");
            PQfreemem(errmsg);
            return NULL;
        }
        PQconninfoFree(opts);
    }
    if ((db = calloc(1, sizeof(*db))) == NULL)
        return NULL;
    if (conninfo != NULL && (db->conninfo = strdup(conninfo)) == NULL) {
        free(db);
        return NULL;
    }
    db->mode = mode;
    return db;
}

void
db_set_target(struct db *db, const char *attrs)
{
    db->target = attrs;
}

int
db_set_statement_timeout(struct db *db, long ms)
{
    const char *env = getenv("PGOPTIONS");
    size_t len;

    free(db->options);
    db->options = NULL;
    if (ms <= 0)
        return 0;
    /* libpq takes "options" over PGOPTIONS: the user's go first, so that
     * they stay, and ours after, so that ours wins. */
    if (env == NULL)
        env = "";
    len = strlen(env) + 48;
    if ((db->options = malloc(len)) == NULL)
        return -1;
    snprintf(db->options, len, "%s%s-c statement_timeout=%ldms", env,
             *env ? " " : "", ms);
    return 0;
}

static void
db_close(struct db *db)
{
    PQfinish(db->conn);
    db->conn = NULL;
}

void
db_free(struct db *db)
{
    if (db == NULL)
        return;
    db_close(db);
    PQclear(db->fortunes_res);
    free(db->fortunes);
    buf_free(&db->ids);
    buf_free(&db->values);
    free(db->conninfo);
    free(db->options);
    free(db);
}

/* Prepare every statement on a new connection; 0 or -1. */
static int
prepare_all(PGconn *conn)
{
    PGresult *res;
    int i, ok;

    for (i = 0; i < NSTMTS; i++) {
        res = PQprepare(conn, stmts[i].name, stmts[i].sql, stmts[i].nparams,
                        stmts[i].types);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            log_err("db: prepare %s: %s", stmts[i].name,
                    PQresultErrorMessage(res));
        PQclear(res);
        if (!ok)
            return -1;
    }
    return 0;
}

/*
 * Open the connection.  Our defaults come first, so that the PG*
 * environment and then the conninfo string override them.
 */
static PGconn *
open_conn(const struct db *db)
{
    const char *keys[12], *vals[12];
    int n = 0;

    if (getenv("PGAPPNAME") == NULL) {
        keys[n] = "application_name";
        vals[n++] = "tfb-fcgi";
    }
    if (getenv("PGCONNECT_TIMEOUT") == NULL) {
        keys[n] = "connect_timeout";
        vals[n++] = "5";
    }
    if (getenv("PGCLIENTENCODING") == NULL) {
        keys[n] = "client_encoding";
        vals[n++] = "UTF8";
    }
    if (db->target != NULL && getenv("PGTARGETSESSIONATTRS") == NULL) {
        keys[n] = "target_session_attrs";
        vals[n++] = db->target;
    }
    /* Notice a peer that vanished from the network within seconds. */
    keys[n] = "keepalives_idle";
    vals[n++] = "10";
    keys[n] = "keepalives_interval";
    vals[n++] = "2";
    keys[n] = "keepalives_count";
    vals[n++] = "3";
    if (db->options != NULL) {
        keys[n] = "options";
        vals[n++] = db->options;
    }
    if (db->conninfo != NULL) {
        keys[n] = "dbname";
        vals[n++] = db->conninfo;
    }
    keys[n] = vals[n] = NULL;
    return PQconnectdbParams(keys, vals, 1);
}

/* several_hosts: whether conn's settings list more than one server. */
static int
several_hosts(PGconn *conn)
{
    PQconninfoOption *opts, *o;
    int several = 0;

    if (conn == NULL || (opts = PQconninfo(conn)) == NULL)
        return 0;
    for (o = opts; o->keyword != NULL; o++)
        if ((strcmp(o->keyword, "host") == 0 ||
             strcmp(o->keyword, "hostaddr") == 0) &&
            o->val != NULL && strchr(o->val, ',') != NULL)
            several = 1;
    PQconninfoFree(opts);
    return several;
}

/* 0, then DB_BACKOFF_MIN_MS doubling up to DB_BACKOFF_MAX_MS. */
static int
next_backoff(int ms)
{
    if (ms == 0)
        return DB_BACKOFF_MIN_MS;
    return ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : ms * 2;
}

int
db_connect(struct db *db)
{
    PGconn *conn;
    int64_t now;

    if (db->conn != NULL)
        return DB_OK;
    now = now_ms();
    if (now < db->next_try_ms)
        return DB_UNAVAILABLE;
    conn = open_conn(db);
    /*
     * libpq walks a list of hosts to the first that will do, but stops at
     * one that closes the connection during its handshake, as a server
     * does in the last moments of a shutdown.  The first failure after a
     * working connection walks the list once more at once: by then that
     * server refuses, and libpq goes on to the next.
     */
    if (PQstatus(conn) != CONNECTION_OK && db->backoff_ms == 0 &&
        several_hosts(conn)) {
        log_info("db: cannot connect, walking the hosts once more: %s",
                 PQerrorMessage(conn));
        PQfinish(conn);
        conn = open_conn(db);
    }
    if (PQstatus(conn) != CONNECTION_OK ||
        (db->mode == DB_PERSISTENT && prepare_all(conn) == -1)) {
        db->backoff_ms = next_backoff(db->backoff_ms);
        db->next_try_ms = now + db->backoff_ms;
        log_warn("db: cannot connect (next try in %d ms): %s", db->backoff_ms,
                 conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        db->lost = 1;
        return DB_UNAVAILABLE;
    }
    /* Blocking I/O with a blocking connection: the worker has nothing else
     * to do while it waits. */
    db->conn = conn;
    db->backoff_ms = 0;
    db->next_try_ms = 0;
    db->broke = 0;
    if (db->lost) {
        log_info("db: connected again");
        sb_reconnected(sb_self());
        db->lost = 0;
    }
    return DB_OK;
}

int64_t
db_retry_in(const struct db *db)
{
    int64_t left;

    if (db == NULL || db->conn != NULL || db->mode != DB_PERSISTENT ||
        !db->lost)
        return -1;
    left = db->next_try_ms - now_ms();
    return left > 0 ? left : 0;
}

void
db_request_done(struct db *db)
{
    db->retried = 0;
    if (db->mode == DB_PER_REQUEST)
        db_close(db);
}

/* An error the connection cannot recover from, or one of an outage. */
static int
is_unavailable(const struct db *db, const PGresult *res)
{
    const char *state;

    if (PQstatus(db->conn) != CONNECTION_OK)
        return 1;
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    /* 08: connection exception; 53: insufficient resources; 57: operator
     * intervention (shutdown, statement_timeout). */
    return state != NULL &&
           (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
            strncmp(state, "57", 2) == 0);
}

/*
 * Run statement id.  In DB_PER_REQUEST mode nothing is prepared, so the
 * text goes with the parameters, as a program that connects per request
 * would do.  Results: the result, or NULL with *rc set and the failure
 * logged; a lost connection is closed here.
 */
static PGresult *
exec_once(struct db *db, enum stmt_id id, const char *const *values,
          const int *lengths, const int *formats, int *rc)
{
    const struct stmt *st = &stmts[id];
    PGresult *res;
    ExecStatusType status;

    if ((*rc = db_connect(db)) != DB_OK)
        return NULL;
    if (db->mode == DB_PERSISTENT)
        res = PQexecPrepared(db->conn, st->name, st->nparams, values, lengths,
                             formats, 1);
    else
        res = PQexecParams(db->conn, st->sql, st->nparams, st->types, values,
                           lengths, formats, 1);
    status = PQresultStatus(res);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        *rc = DB_OK;
        return res;
    }
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s",
             PQresultErrorField(res, PG_DIAG_SQLSTATE)
                 ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                 : "");
    if (is_unavailable(db, res)) {
        log_warn("db: %s: connection lost: %s", st->name,
                 db->conn ? PQerrorMessage(db->conn) : "");
        db->broke = PQstatus(db->conn) != CONNECTION_OK;
        db_close(db);
        db->lost = 1;
        *rc = DB_UNAVAILABLE;
    } else {
        log_err("db: %s: %s", st->name, PQresultErrorMessage(res));
        *rc = DB_ERROR;
    }
    PQclear(res);
    return NULL;
}

/*
 * reconnected: after a read that failed because its connection was dead,
 * and that connection was not made for this very call: it died while the
 * worker was idle (PostgreSQL restarted, or dropped it, since the last
 * request).  Reconnect at once, backoff or not, so that the caller may try
 * its read once more.  Only reads do: a write whose answer was lost may
 * have been committed.  Results: whether there is a connection again.
 */
static int
reconnected(struct db *db, int fresh)
{
    if (fresh || !db->broke || db->retried)
        return 0;
    db->retried = 1;
    db->broke = 0;
    db->next_try_ms = 0;
    if (db_connect(db) != DB_OK)
        return 0;
    log_info("db: the connection had died while idle; reconnected, trying "
             "again");
    return 1;
}

/*
 * db_exec: run statement id; a read whose connection turns out to have
 * died while idle is run once more on a new one.
 */
static PGresult *
db_exec(struct db *db, enum stmt_id id, const char *const *values,
        const int *lengths, const int *formats, int *rc)
{
    int fresh = db->conn == NULL;
    PGresult *res;

    in_database();
    res = exec_once(db, id, values, lengths, formats, rc);
    if (res == NULL && *rc == DB_UNAVAILABLE && stmts[id].reads &&
        reconnected(db, fresh))
        res = exec_once(db, id, values, lengths, formats, rc);
    out_of_database(0);
    return res;
}

/*
 * get_int4: the binary int4 at (row, col) into *v.  What comes back is
 * checked like anything else from the network: a NULL or a value of
 * another length is an error (a schema that is not ours), never read.
 */
static int
get_int4(const PGresult *res, int row, int col, int32_t *v)
{
    uint32_t raw;

    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 4)
        return -1;
    memcpy(&raw, PQgetvalue(res, row, col), sizeof(raw));
    *v = (int32_t)ntohl(raw);
    return 0;
}

/* Check that a binary result has the expected int4 shape. */
static int
check_int4_cols(const PGresult *res, int ncols)
{
    int c;

    if (PQnfields(res) != ncols)
        return -1;
    for (c = 0; c < ncols; c++)
        if (PQftype(res, c) != INT4OID)
            return -1;
    return 0;
}

/* world_row: row i of a world result into *w, or -1 on a bad shape. */
static int
world_row(const PGresult *res, int i, struct world *w)
{
    return get_int4(res, i, 0, &w->id) == -1 ||
                   get_int4(res, i, 1, &w->random_number) == -1
               ? -1
               : 0;
}

/* world_one: the one World row of a read's result, checked. */
static int
world_one(const PGresult *res, int32_t id, struct world *w)
{
    if (PQntuples(res) != 1 || check_int4_cols(res, 2) == -1 ||
        world_row(res, 0, w) == -1 || w->id != id) {
        log_err("db: world row %d: %d rows of an unexpected shape", (int)id,
                PQntuples(res));
        return DB_ERROR;
    }
    return DB_OK;
}

/* is_cancelled: the statement was cancelled: statement_timeout, or a
 * cancel request (pg_cancel_backend). */
static int
is_cancelled(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return state != NULL && strcmp(state, "57014") == 0;
}

/*
 * pipeline_broken: the connection failed in the middle of a pipeline:
 * close it, so that the next request starts on a new one, never out of
 * step with what the server still has to send.
 */
static int
pipeline_broken(struct db *db, const char *what)
{
    log_warn("db: world_read pipeline: %s: %s", what, PQerrorMessage(db->conn));
    db->broke = PQstatus(db->conn) != CONNECTION_OK;
    db_close(db);
    db->lost = 1;
    return DB_UNAVAILABLE;
}

/*
 * world_read_pipelined: every read of a request in one pipeline: each
 * SELECT is its own prepared statement followed by its own Sync (the
 * TechEmpower rule), all sent before any answer is read, so the request
 * costs about one round trip instead of n.  An error in one statement
 * ends at its Sync: the other answers are still read, so the connection
 * stays in step.  libpq 15 flushes at each PQpipelineSync: n small
 * writes, one round trip.
 */
static int
world_read_pipelined(struct db *db, const int32_t *ids, int n,
                     struct world *out)
{
    PGconn *conn = db->conn;
    PGresult *res;
    uint32_t param;
    const char *values[1] = {(const char *)&param};
    const int lengths[1] = {sizeof(param)}, formats[1] = {1};
    int i, cancelled, rc = DB_OK;

    if (PQenterPipelineMode(conn) != 1)
        return pipeline_broken(db, "cannot enter pipeline mode");
    for (i = 0; i < n; i++) {
        param = htonl((uint32_t)ids[i]);
        if (PQsendQueryPrepared(conn, stmts[WORLD_READ].name, 1, values,
                                lengths, formats, 1) != 1 ||
            PQpipelineSync(conn) != 1)
            return pipeline_broken(db, "send");
    }
    for (i = 0; i < n; i++) {
        /* The statement's result, its end (NULL), then its Sync. */
        if ((res = PQgetResult(conn)) == NULL)
            return pipeline_broken(db, "a result missing");
        cancelled = 0;
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            if (rc == DB_OK)
                rc = world_one(res, ids[i], &out[i]);
        } else if (PQresultStatus(res) != PGRES_PIPELINE_ABORTED) {
            if (rc == DB_OK) {
                rc = is_unavailable(db, res) ? DB_UNAVAILABLE : DB_ERROR;
                log_err("db: world_read: %s", PQresultErrorMessage(res));
            }
            cancelled = is_cancelled(res);
        }
        PQclear(res);
        if (PQstatus(conn) != CONNECTION_OK)
            return pipeline_broken(db, "lost");
        /*
         * statement_timeout is per statement, and each statement queued
         * behind a cancelled one may wait as long (a lock held on world):
         * waiting for their answers could take n times the limit, past
         * the supervisor's request time limit, which kills the worker.
         * Leave them to the server with the connection instead; the next
         * request makes a new one.
         */
        if (cancelled && i + 1 < n)
            return pipeline_broken(db, "a statement was cancelled, "
                                       "leaving the rest");
        if ((res = PQgetResult(conn)) != NULL) {
            PQclear(res);
            return pipeline_broken(db, "more results than statements");
        }
        res = PQgetResult(conn);
        if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
            PQclear(res);
            return pipeline_broken(db, "a Sync missing");
        }
        PQclear(res);
    }
    if (PQexitPipelineMode(conn) != 1)
        return pipeline_broken(db, "cannot leave pipeline mode");
    if (rc == DB_UNAVAILABLE) {
        db_close(db);
        db->lost = 1;
    }
    return rc;
}

static int
world_read_once(struct db *db, const int32_t *ids, int n, struct world *out)
{
    PGresult *res;
    uint32_t param;
    const char *values[1] = {(const char *)&param};
    const int lengths[1] = {sizeof(param)}, formats[1] = {1};
    int rc;

    /* One statement gains nothing from a pipeline; the per-request
     * experiment prepares nothing and stays the classic mistake. */
    if (n > 1 && db->mode == DB_PERSISTENT) {
        in_database();
        if ((rc = db_connect(db)) == DB_OK)
            rc = world_read_pipelined(db, ids, n, out);
        return out_of_database(rc);
    }
    for (int i = 0; i < n; i++) {
        param = htonl((uint32_t)ids[i]);
        if ((res = db_exec(db, WORLD_READ, values, lengths, formats, &rc)) ==
            NULL)
            return rc;
        rc = world_one(res, ids[i], &out[i]);
        PQclear(res);
        if (rc != DB_OK)
            return rc;
    }
    return DB_OK;
}

int
db_world_read(struct db *db, const int32_t *ids, int n, struct world *out)
{
    int fresh = db->conn == NULL, rc;

    rc = world_read_once(db, ids, n, out);
    if (rc == DB_UNAVAILABLE && reconnected(db, fresh))
        rc = world_read_once(db, ids, n, out);
    return rc;
}

static int
world_cmp(const void *a, const void *b)
{
    const struct world *x = a, *y = b;

    return (x->id > y->id) - (x->id < y->id);
}

/* "{v1,v2,...}": a PostgreSQL array literal of n integers. */
static void
put_array(struct buf *b, const struct world *rows, int n, int ids)
{
    int i;
    int32_t v;

    buf_reset(b);
    buf_putc(b, '{');
    for (i = 0; i < n; i++) {
        if (i > 0)
            buf_putc(b, ',');
        v = ids ? rows[i].id : rows[i].random_number;
        buf_put_int(b, v);
    }
    buf_putc(b, '}');
    buf_putc(b, '\0');
}

int
db_world_update(struct db *db, struct world *rows, int n)
{
    const char *values[2];
    PGresult *res;
    int attempt, rc = DB_ERROR;

    qsort(rows, (size_t)n, sizeof(*rows), world_cmp);
    put_array(&db->ids, rows, n, 1);
    put_array(&db->values, rows, n, 0);
    if (db->ids.failed || db->values.failed)
        return DB_ERROR;
    values[0] = db->ids.data;
    values[1] = db->values.data;
    /*
     * Sorted ids keep concurrent updates from deadlocking in practice; a
     * deadlock PostgreSQL still detects rolled the statement back whole, so
     * it is safe to run again.
     */
    for (attempt = 0; attempt < 3; attempt++) {
        res = db_exec(db, WORLD_UPDATE, values, NULL, NULL, &rc);
        if (res != NULL) {
            PQclear(res);
            return DB_OK;
        }
        if (rc != DB_ERROR || strcmp(db->sqlstate, "40P01") != 0)
            break;
    }
    return rc;
}

int
db_world_all(struct db *db, struct world *out, int cap, int *n)
{
    PGresult *res;
    int i, rc, rows;

    if ((res = db_exec(db, WORLD_ALL, NULL, NULL, NULL, &rc)) == NULL)
        return rc;
    if (check_int4_cols(res, 2) == -1) {
        PQclear(res);
        return DB_ERROR;
    }
    rows = PQntuples(res);
    if (rows > cap)
        rows = cap;
    for (i = 0; i < rows; i++) {
        if (world_row(res, i, &out[i]) == -1) {
            log_err("db: world_all: row %d of an unexpected shape", i);
            PQclear(res);
            return DB_ERROR;
        }
    }
    *n = rows;
    PQclear(res);
    return DB_OK;
}

int
db_fortunes(struct db *db, struct fortune **out, int *n)
{
    PGresult *res;
    struct fortune *f;
    int i, rc, rows;

    PQclear(db->fortunes_res);
    db->fortunes_res = NULL;
    if ((res = db_exec(db, FORTUNE_ALL, NULL, NULL, NULL, &rc)) == NULL)
        return rc;
    rows = PQntuples(res);
    if (PQnfields(res) != 2 || PQftype(res, 0) != INT4OID) {
        PQclear(res);
        return DB_ERROR;
    }
    /* One spare slot: the handler adds the request-time fortune. */
    if (rows + 1 > db->fortunes_cap) {
        f = realloc(db->fortunes, (size_t)(rows + 1) * sizeof(*f));
        if (f == NULL) {
            PQclear(res);
            return DB_ERROR;
        }
        db->fortunes = f;
        db->fortunes_cap = rows + 1;
    }
    for (i = 0; i < rows; i++) {
        if (get_int4(res, i, 0, &db->fortunes[i].id) == -1 ||
            PQgetisnull(res, i, 1)) {
            log_err("db: fortune_all: row %d of an unexpected shape", i);
            PQclear(res);
            return DB_ERROR;
        }
        db->fortunes[i].message = PQgetvalue(res, i, 1);
        db->fortunes[i].len = (size_t)PQgetlength(res, i, 1);
    }
    db->fortunes_res = res;
    *out = db->fortunes;
    *n = rows;
    return DB_OK;
}
