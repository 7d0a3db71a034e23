/*
 * db.c: see db.h.
 */
#include "db.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
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

/*
 * The session's statement_timeout in milliseconds, whatever set it, read
 * with the statements' preparation (db.h: the answer's deadline sits above
 * it).  pg_settings gives it in its unit, ms, where SHOW would say "2min".
 */
static const char st_probe[] =
    "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'";

/* The results of the preparation's pipeline: a result and its end (NULL)
 * for each statement and the probe, then the Sync's. */
#define PREPARE_RESULTS (2 * (NSTMTS + 1) + 1)

/* The values of target_session_attrs libpq 15 knows; the walk passes its
 * own per host, a constant of this list. */
static const char *const targets[] = {
    "any",     "read-write",     "read-only", "primary",
    "standby", "prefer-standby", NULL,
};

/*
 * The hosts a handle walks itself, one libpq connection each, so that each
 * gets its own deadline.  n == 0: one libpq connection does it all (a
 * single host, or a list left to libpq whole).
 */
struct walk {
    int n;
    char *store;                       /* the lists, split in place */
    const char **vec;                  /* host, addr and port's room */
    const char **host, **addr, **port; /* n each, or NULL: not given */
    int nport;                         /* 1 (the same for all) or n */
    unsigned char *stalled; /* timed out: not tried again in this walk */
    const char *target;     /* the effective target_session_attrs, or NULL */
    int64_t bound_ms;       /* each host's attempt, at most */
};

/* A connection being made, host after host. */
struct dial {
    int active;          /* connecting */
    PGconn *conn;        /* the current host's attempt */
    int preparing;       /* connected; the statements are being prepared */
    short events;        /* what conn's socket must be ready for */
    int64_t deadline_ms; /* the current host's */
    struct walk walk;
    int host, pass, npasses;
    const char *pass_target[2]; /* per pass; NULL: libpq's default */
    int due, got;               /* the preparation's results */
    int64_t st_ms;              /* the probe's answer */
    struct buf why;             /* each attempt's failure, for the log */
};

/* Who asked for the dial a request waits for (db_connect). */
enum { EAGER_LOOP = 1, EAGER_REQUEST = 2 };

struct db {
    PGconn *conn;   /* connected, statements prepared, non-blocking */
    char *conninfo; /* NULL: the PG* environment alone */
    enum db_mode mode;
    const char *target;  /* target_session_attrs, unless told; or NULL */
    char *options;       /* libpq's options, statement_timeout's; or NULL */
    int64_t connect_ms;  /* each host's connection, at most */
    int64_t timeout_ms;  /* an answer's, as told (0: the default) */
    int64_t st_ms;       /* the session's statement_timeout (0: none) */
    int64_t next_try_ms; /* no connection attempt before this */
    int backoff_ms;      /* 0 while the last attempt succeeded */
    int lost;            /* the connection was lost: log the recovery */
    int broke;           /* the last failure was the connection itself */
    int retried;         /* this request has reconnected once already */
    unsigned epoch;      /* changes when conn is closed or replaced */
    int eager;           /* a request waits for the dial (EAGER_*), or 0 */
    int retry_once;   /* the loop's eager dial failed: a request tries once */
    char fatal[256];  /* a FATAL the server sent outside a statement */
    char sqlstate[6]; /* of the last statement that failed */
    struct dial dial;
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

/* msg_len: s's length without its trailing newlines (libpq ends its
 * messages with one; the log adds its own). */
static int
msg_len(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    return (int)n;
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
    db->connect_ms = DB_CONNECT_TIMEOUT_MS;
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

void
db_set_timeouts(struct db *db, long connect_ms, long answer_ms)
{
    db->connect_ms = connect_ms > 0 ? connect_ms : DB_CONNECT_TIMEOUT_MS;
    db->timeout_ms = answer_ms > 0 ? answer_ms : 0;
}

/* answer_ms: how long one result may take (db.h: above statement_timeout). */
static int64_t
answer_ms(const struct db *db)
{
    int64_t ms = db->timeout_ms;

    if (ms == 0)
        ms = db->st_ms > 0 ? 0 : DB_TIMEOUT_MS;
    if (db->st_ms > 0 && ms < db->st_ms + DB_TIMEOUT_MARGIN_MS)
        ms = db->st_ms + DB_TIMEOUT_MARGIN_MS;
    return ms;
}

/*
 * db_close: close the connection.  PQfinish never blocks here: the socket
 * is non-blocking, and a Terminate message that does not fit is dropped.
 */
static void
db_close(struct db *db)
{
    if (db->conn != NULL)
        db->epoch++;
    PQfinish(db->conn);
    db->conn = NULL;
}

static void dial_end(struct db *db);

void
db_free(struct db *db)
{
    if (db == NULL)
        return;
    dial_end(db);
    buf_free(&db->dial.why);
    db_close(db);
    PQclear(db->fortunes_res);
    free(db->fortunes);
    buf_free(&db->ids);
    buf_free(&db->values);
    free(db->conninfo);
    free(db->options);
    free(db);
}

/* 0, then DB_BACKOFF_MIN_MS doubling up to DB_BACKOFF_MAX_MS. */
static int
next_backoff(int ms)
{
    if (ms == 0)
        return DB_BACKOFF_MIN_MS;
    return ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : ms * 2;
}

/* back_off: no attempt before the next step of the backoff. */
static void
back_off(struct db *db)
{
    db->backoff_ms = next_backoff(db->backoff_ms);
    db->next_try_ms = now_ms() + db->backoff_ms;
    db->lost = 1;
}

/*
 * Connection parameters, in PQconnectStartParams' two arrays.  At most
 * our 7 defaults, the conninfo, a host's 4 overrides and the terminator.
 */
#define MAX_PARAMS 16

struct params {
    const char *keys[MAX_PARAMS], *vals[MAX_PARAMS];
    int n;
};

static void
param(struct params *p, const char *key, const char *val)
{
    assert(p->n < MAX_PARAMS - 1);
    p->keys[p->n] = key;
    p->vals[p->n++] = val;
    p->keys[p->n] = p->vals[p->n] = NULL;
}

/*
 * base_params: what every connection of db is given.  Our defaults come
 * first, so that the conninfo string, expanded after them, overrides them;
 * a PG* variable would lose to a value in the array, so ours is left out
 * where one is set.
 */
static void
base_params(const struct db *db, struct params *p)
{
    p->n = 0;
    p->keys[0] = p->vals[0] = NULL;
    if (getenv("PGAPPNAME") == NULL)
        param(p, "application_name", "tfb-fcgi");
    if (getenv("PGCLIENTENCODING") == NULL)
        param(p, "client_encoding", "UTF8");
    if (db->target != NULL && getenv("PGTARGETSESSIONATTRS") == NULL)
        param(p, "target_session_attrs", db->target);
    /*
     * TCP only (libpq sets none of them on a unix socket): notice a peer
     * that vanished within seconds, whether the connection is idle
     * (keepalives: after 10 s, 3 probes 2 s apart) or holds data we sent
     * (tcp_user_timeout: unacknowledged for 5 s, the write fails).
     */
    param(p, "keepalives_idle", "10");
    param(p, "keepalives_interval", "2");
    param(p, "keepalives_count", "3");
    param(p, "tcp_user_timeout", "5000");
    if (db->options != NULL)
        param(p, "options", db->options);
    if (db->conninfo != NULL)
        param(p, "dbname", db->conninfo);
}

/* opt_val: key's value in opts (NULL: none), NULL when unset or empty. */
static const char *
opt_val(const PQconninfoOption *opts, const char *key)
{
    for (; opts != NULL && opts->keyword != NULL; opts++)
        if (strcmp(opts->keyword, key) == 0)
            return opts->val != NULL && opts->val[0] != '\0' ? opts->val : NULL;
    return NULL;
}

/* setting: key as libpq settles it: the conninfo's, else the PG*
 * environment's or libpq's default (defs). */
static const char *
setting(const PQconninfoOption *given, const PQconninfoOption *defs,
        const char *key)
{
    const char *v = opt_val(given, key);

    return v != NULL ? v : opt_val(defs, key);
}

/* entries: how many a comma-separated list holds (NULL: 0). */
static int
entries(const char *list)
{
    int n = 1;

    if (list == NULL)
        return 0;
    for (; *list != '\0'; list++)
        n += *list == ',';
    return n;
}

/* split: list's n entries, in place, into v.  Results: 0, or -1 when one
 * is empty (which libpq reads as its default: the walk leaves it to it). */
static int
split(char *list, const char **v, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        v[i] = list;
        if ((list = strchr(list, ',')) != NULL)
            *list++ = '\0';
        if (v[i][0] == '\0')
            return -1;
    }
    return 0;
}

/*
 * host_bound_ms: each host's bound: ours, or libpq's connect_timeout in
 * seconds (ct, NULL: not set) when shorter, read as libpq reads it: 0 or
 * less is none, 1 is 2.
 */
static int64_t
host_bound_ms(int64_t ours, const char *ct)
{
    char *end;
    long s;

    if (ct == NULL)
        return ours;
    s = strtol(ct, &end, 10);
    if (end == ct || *end != '\0' || s <= 0)
        return ours;
    if (s < 2)
        s = 2;
    return s > ours / 1000 ? ours : s * 1000;
}

/* walk_target: the target_session_attrs in force, as a constant of
 * targets[]; NULL when none is, or libpq should judge an unknown one. */
static const char *
walk_target(const struct db *db, const PQconninfoOption *given, int *known)
{
    const char *t = opt_val(given, "target_session_attrs");
    int i;

    if (t == NULL && (t = getenv("PGTARGETSESSIONATTRS")) != NULL && *t == '\0')
        t = NULL;
    if (t == NULL)
        t = db->target;
    *known = 1;
    if (t == NULL)
        return NULL;
    for (i = 0; targets[i] != NULL; i++)
        if (strcmp(targets[i], t) == 0)
            return targets[i];
    *known = 0;
    return NULL;
}

/*
 * walk_lists: split host, hostaddr and port into w's arrays.  Results: 0,
 * or -1 when libpq should have them whole (a mismatch it will report, an
 * empty entry, no memory).
 */
static int
walk_lists(struct walk *w, const char *host, const char *addr, const char *port)
{
    int nh = entries(host), na = entries(addr), np = entries(port), n;
    size_t lh = host ? strlen(host) + 1 : 0, la = addr ? strlen(addr) + 1 : 0;
    size_t lp = port ? strlen(port) + 1 : 0;
    const char **v;

    n = nh > na ? nh : na;
    if (n < 2 || (nh > 0 && na > 0 && nh != na) || (np > 1 && np != n))
        return -1;
    w->store = malloc(lh + la + lp);
    w->vec = v = calloc((size_t)(3 * n), sizeof(*v));
    w->stalled = calloc((size_t)n, 1);
    if (w->store == NULL || v == NULL || w->stalled == NULL)
        return -1;
    w->host = host ? v : NULL;
    w->addr = addr ? v + n : NULL;
    w->port = port ? v + 2 * n : NULL;
    w->nport = np;
    w->n = n;
    if (host && split(memcpy(w->store, host, lh), w->host, n) == -1)
        return -1;
    if (addr && split(memcpy(w->store + lh, addr, la), w->addr, n) == -1)
        return -1;
    if (port && split(memcpy(w->store + lh + la, port, lp), w->port, np))
        return -1;
    return 0;
}

/* walk_free: no list any more (n == 0); the target and bound stay. */
static void
walk_free(struct walk *w)
{
    free(w->vec);
    free(w->store);
    free(w->stalled);
    w->vec = w->host = w->addr = w->port = NULL;
    w->store = NULL;
    w->stalled = NULL;
    w->n = w->nport = 0;
}

/*
 * walk_plan: the hosts db's settings name, as libpq would settle them (the
 * conninfo, else the PG* environment, else libpq's defaults), the target
 * and each host's bound.  A service file may name hosts of its own: with
 * one, libpq walks (n == 0).
 */
static void
walk_plan(const struct db *db, struct walk *w)
{
    PQconninfoOption *given = NULL, *defs = PQconndefaults();
    int known;

    memset(w, 0, sizeof(*w));
    if (db->conninfo != NULL)
        given = PQconninfoParse(db->conninfo, NULL);
    w->target = walk_target(db, given, &known);
    w->bound_ms =
        host_bound_ms(db->connect_ms, opt_val(given, "connect_timeout")
                                          ? opt_val(given, "connect_timeout")
                                          : getenv("PGCONNECT_TIMEOUT"));
    if (known && setting(given, defs, "service") == NULL &&
        walk_lists(w, setting(given, defs, "host"),
                   setting(given, defs, "hostaddr"),
                   setting(given, defs, "port")) == -1)
        walk_free(w);
    PQconninfoFree(given);
    PQconninfoFree(defs);
}

/*
 * The dial: a connection made without blocking, host after host.  Each
 * attempt is one libpq connection driven by PQconnectPoll, then, once
 * connected, the statements' preparation sent as one pipeline and read
 * back; both within the host's bound.  Any failure of a host (refused,
 * closed, wrong kind, timed out, a statement that does not prepare) moves
 * to the next one.
 */

/* dial_note: why this attempt failed, for the log line of the walk.
 * Results: DB_UNAVAILABLE. */
static int
dial_note(struct db *db, const char *why)
{
    struct buf *b = &db->dial.why;
    int n = msg_len(why), i;

    if (b->len > 0)
        buf_puts(b, "; ");
    for (i = 0; i < n; i++)
        buf_putc(b, why[i] == '\n' || why[i] == '\t' ? ' ' : why[i]);
    return DB_UNAVAILABLE;
}

/*
 * on_notice: libpq's notice receiver (its default writes to stderr, past
 * our log).  What the server sends outside a statement comes here too: a
 * FATAL on an idle connection (a shutdown, pg_terminate_backend, an idle
 * session timeout) is kept as the reason db_idle_check gives.
 */
static void
on_notice(void *arg, const PGresult *res)
{
    struct db *db = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorMessage(res);

    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        snprintf(db->fatal, sizeof(db->fatal), "%.*s", msg_len(msg), msg);
    else
        log_debug("db: the server says: %.*s", msg_len(msg), msg);
}

/* dial_attempt: start the connection to the walk's current host. */
static void
dial_attempt(struct db *db)
{
    struct dial *d = &db->dial;
    struct walk *w = &d->walk;
    const char *target = d->pass_target[d->pass];
    struct params p;

    base_params(db, &p);
    if (w->n > 0) {
        /* After the conninfo: these override its lists. */
        if (w->host != NULL)
            param(&p, "host", w->host[d->host]);
        if (w->addr != NULL)
            param(&p, "hostaddr", w->addr[d->host]);
        if (w->port != NULL)
            param(&p, "port", w->port[w->nport > 1 ? d->host : 0]);
        if (target != NULL)
            param(&p, "target_session_attrs", target);
    }
    d->conn = PQconnectStartParams(p.keys, p.vals, 1);
    if (d->conn != NULL)
        PQsetNoticeReceiver(d->conn, on_notice, db);
    /* As if PQconnectPoll had asked for a write (its manual's word). */
    d->events = POLLOUT;
    d->preparing = 0;
    d->due = d->got = 0;
    d->st_ms = 0;
    d->deadline_ms = now_ms() + w->bound_ms;
}

/* dial_next: on to the walk's next host (or pass).  Results: 1, or 0 at
 * the end of the walk. */
static int
dial_next(struct dial *d)
{
    if (d->walk.n == 0)
        return 0;
    for (;;) {
        if (++d->host == d->walk.n) {
            if (d->pass + 1 == d->npasses)
                return 0;
            d->pass++;
            d->host = 0;
        }
        if (!d->walk.stalled[d->host])
            return 1;
    }
}

/* dial_begin: a new walk, from its first host. */
static void
dial_begin(struct db *db)
{
    struct dial *d = &db->dial;

    d->active = 1;
    sb_db_attempt(sb_self());
    buf_reset(&d->why);
    walk_plan(db, &d->walk);
    d->host = d->pass = 0;
    d->npasses = 1;
    d->pass_target[0] = d->walk.target;
    /* libpq's own rule for prefer-standby: standbys first, then any. */
    if (d->walk.target != NULL &&
        strcmp(d->walk.target, "prefer-standby") == 0) {
        d->pass_target[0] = "standby";
        d->pass_target[1] = "any";
        d->npasses = 2;
    }
    dial_attempt(db);
}

/* dial_end: no connection under way any more. */
static void
dial_end(struct db *db)
{
    struct dial *d = &db->dial;

    PQfinish(d->conn);
    d->conn = NULL;
    walk_free(&d->walk);
    d->active = 0;
}

/*
 * ready: whether conn's socket is ready for events now.  PQconnectPoll
 * must not be called before: in the middle of a TCP connect it would take
 * the socket for connected.
 */
static int
ready(PGconn *conn, short events)
{
    struct pollfd p = {PQsocket(conn), events, 0};

    if (p.fd < 0)
        return 1; /* no socket: let libpq say what is wrong */
    return poll(&p, 1, 0) > 0;
}

/* prepare_start: connected: the socket non-blocking for good, and every
 * statement's preparation, then the probe, sent as one pipeline.  Results:
 * 0, or -1. */
static int
prepare_start(struct db *db)
{
    struct dial *d = &db->dial;
    PGconn *conn = d->conn;
    int i;

    d->preparing = 1;
    d->events = POLLIN;
    if (PQsetnonblocking(conn, 1) != 0)
        return -1;
    /* The per-request experiment prepares nothing: the classic mistake. */
    if (db->mode != DB_PERSISTENT)
        return 0;
    d->due = PREPARE_RESULTS;
    if (PQenterPipelineMode(conn) != 1)
        return -1;
    for (i = 0; i < NSTMTS; i++)
        if (PQsendPrepare(conn, stmts[i].name, stmts[i].sql, stmts[i].nparams,
                          stmts[i].types) != 1)
            return -1;
    if (PQsendQueryParams(conn, st_probe, 0, NULL, NULL, NULL, NULL, 0) != 1 ||
        PQpipelineSync(conn) != 1)
        return -1;
    return 0;
}

/* probe_result: the session's statement_timeout into d->st_ms.  Results:
 * whether the answer is one. */
static int
probe_result(struct dial *d, const PGresult *res)
{
    char *end;
    long ms;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
        return 0;
    ms = strtol(PQgetvalue(res, 0, 0), &end, 10);
    if (*end != '\0' || ms < 0)
        return 0;
    d->st_ms = ms;
    return 1;
}

/*
 * prepared_result: the preparation's next result, res (consumed), checked
 * against the order they come in: each statement's (the probe last) and
 * its end, then the Sync's.  Results: 0, or -1 (noted).
 */
static int
prepared_result(struct db *db, PGresult *res)
{
    struct dial *d = &db->dial;
    int i = d->got / 2, good;
    const char *what = i < NSTMTS ? stmts[i].name : "statement_timeout";
    char msg[512];

    if (i == NSTMTS + 1) {
        good = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        what = "sync";
    } else if (d->got % 2 == 1)
        good = res == NULL;
    else if (i < NSTMTS)
        good = PQresultStatus(res) == PGRES_COMMAND_OK;
    else
        good = probe_result(d, res);
    d->got++;
    if (!good) {
        snprintf(msg, sizeof(msg), "prepare %s: %s", what,
                 res != NULL ? PQresultErrorMessage(res) : "no result");
        dial_note(db, msg);
    }
    PQclear(res);
    return good ? 0 : -1;
}

/* prepare_step: read what the preparation's answers have brought.
 * Results: DB_OK (all of them), DB_PENDING, DB_UNAVAILABLE (noted). */
static int
prepare_step(struct db *db)
{
    struct dial *d = &db->dial;
    PGconn *conn = d->conn;
    int flushed;

    if ((flushed = PQflush(conn)) == -1 || !PQconsumeInput(conn))
        return dial_note(db, PQerrorMessage(conn));
    while (d->got < d->due && !PQisBusy(conn))
        if (prepared_result(db, PQgetResult(conn)) == -1)
            return DB_UNAVAILABLE;
    if (d->got < d->due) {
        d->events = POLLIN | (flushed == 1 ? POLLOUT : 0);
        return DB_PENDING;
    }
    if (d->due > 0 && PQexitPipelineMode(conn) != 1)
        return dial_note(db, PQerrorMessage(conn));
    return DB_OK;
}

/* dial_advance: the current attempt, as far as it goes without waiting.
 * Results: DB_OK, DB_PENDING, or DB_UNAVAILABLE (this host failed: noted). */
static int
dial_advance(struct db *db)
{
    struct dial *d = &db->dial;
    PostgresPollingStatusType st;

    if (d->conn == NULL)
        return dial_note(db, "out of memory");
    while (!d->preparing) {
        if (PQstatus(d->conn) == CONNECTION_BAD)
            return dial_note(db, PQerrorMessage(d->conn));
        if (!ready(d->conn, d->events))
            return DB_PENDING;
        st = PQconnectPoll(d->conn);
        if (st == PGRES_POLLING_FAILED)
            return dial_note(db, PQerrorMessage(d->conn));
        if (st == PGRES_POLLING_OK) {
            if (prepare_start(db) == -1)
                return dial_note(db, PQerrorMessage(d->conn));
        } else {
            d->events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        }
    }
    return prepare_step(db);
}

/* dial_timed_out: the current host's bound passed.  Results:
 * DB_UNAVAILABLE (noted; the host is not tried again in this walk). */
static int
dial_timed_out(struct db *db)
{
    struct dial *d = &db->dial;
    const char *host = PQhost(d->conn), *port = PQport(d->conn);
    char msg[512];

    host = host != NULL ? host : "";
    port = port != NULL ? port : "";
    /* Named as libpq names a server in its own messages. */
    if (host[0] == '/')
        snprintf(msg, sizeof(msg),
                 "connection to server on socket "
                 "\"%s/.s.PGSQL.%s\"",
                 host, port);
    else
        snprintf(msg, sizeof(msg), "connection to server at \"%s\", port %s",
                 host, port);
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
             ": no answer within %lld ms%s", (long long)d->walk.bound_ms,
             d->preparing ? " (preparing the statements)" : "");
    if (d->walk.n > 0)
        d->walk.stalled[d->host] = 1;
    return dial_note(db, msg);
}

/* dial_done: the attempt succeeded: it is db's connection.  The hosts
 * it walked past, if any, are worth a line: one of them is down. */
static int
dial_done(struct db *db)
{
    struct buf *why = &db->dial.why;

    if (why->len > 0)
        log_info("db: connected, past: %.*s", (int)why->len, why->data);
    db->conn = db->dial.conn;
    db->dial.conn = NULL;
    db->epoch++;
    db->eager = db->retry_once = 0;
    db->st_ms = db->dial.st_ms;
    dial_end(db);
    db->backoff_ms = 0;
    db->next_try_ms = 0;
    db->broke = 0;
    sb_db_up(sb_self());
    if (db->lost) {
        log_info("db: connected again");
        sb_reconnected(sb_self());
        db->lost = 0;
    }
    return DB_OK;
}

/* dial_failed: every host failed: one line says why, the backoff starts. */
static int
dial_failed(struct db *db)
{
    struct buf *why = &db->dial.why;

    back_off(db);
    /* The loop's first attempt after the end failed (a restart under
     * way): the next request may try once itself, backoff or not, as it
     * would have had the end not been seen (db_idle_check); the loop's
     * later attempts failing too leave that to it. */
    if (db->eager == EAGER_LOOP)
        db->retry_once = 1;
    db->eager = 0;
    log_warn("db: cannot connect (next try in %d ms): %.*s", db->backoff_ms,
             why->data != NULL ? (int)why->len : 0,
             why->data != NULL ? why->data : "");
    sb_db_down(sb_self(), why->data, why->data != NULL ? why->len : 0);
    dial_end(db);
    return DB_UNAVAILABLE;
}

int
db_connect_step(struct db *db)
{
    struct dial *d = &db->dial;
    int rc;

    if (db->conn != NULL)
        return DB_OK;
    if (!d->active)
        return DB_UNAVAILABLE;
    for (;;) {
        rc = dial_advance(db);
        if (rc == DB_PENDING && now_ms() >= d->deadline_ms)
            rc = dial_timed_out(db);
        if (rc == DB_OK)
            return dial_done(db);
        if (rc == DB_PENDING)
            return DB_PENDING;
        PQfinish(d->conn);
        d->conn = NULL;
        if (!dial_next(d))
            return dial_failed(db);
        dial_attempt(db);
    }
}

int
db_connect_start(struct db *db)
{
    if (db->conn != NULL)
        return DB_OK;
    if (db->dial.active)
        return DB_PENDING;
    if (now_ms() < db->next_try_ms)
        return DB_UNAVAILABLE;
    dial_begin(db);
    return db_connect_step(db);
}

int
db_pollfd(const struct db *db, short *events)
{
    if (!db->dial.active || db->dial.conn == NULL)
        return -1;
    *events = db->dial.events;
    return PQsocket(db->dial.conn);
}

int64_t
db_connect_left(const struct db *db)
{
    int64_t left;

    if (db == NULL || !db->dial.active)
        return -1;
    left = db->dial.deadline_ms - now_ms();
    return left > 0 ? left : 0;
}

int
db_connect(struct db *db)
{
    struct pollfd p;
    int rc;

    if (db->conn != NULL)
        return DB_OK;
    /* A dial under way in the loop: during an outage, the request does not
     * wait for it; after a connection that ended while idle, it does, and
     * when the loop's first attempt then failed, the next request tries
     * once more itself, as it would have had the end not been seen (db.h:
     * db_idle_check): a restart costs no request. */
    if (db->retry_once) {
        db->retry_once = 0;
        db->eager = EAGER_REQUEST;
        db->next_try_ms = 0;
    }
    if (db->dial.active && !db->eager)
        return DB_UNAVAILABLE;
    rc = db->dial.active ? DB_PENDING : db_connect_start(db);
    while (rc == DB_PENDING) {
        /* A failed poll() only shortens the wait: the step checks both
         * the socket and the deadline. */
        p.fd = db_pollfd(db, &p.events);
        p.revents = 0;
        (void)poll(&p, 1, (int)db_connect_left(db));
        rc = db_connect_step(db);
    }
    return rc;
}

int64_t
db_retry_in(const struct db *db)
{
    int64_t left;

    if (db == NULL || db->conn != NULL || db->dial.active ||
        db->mode != DB_PERSISTENT || !db->lost)
        return -1;
    left = db->next_try_ms - now_ms();
    return left > 0 ? left : 0;
}

int
db_idle_fd(const struct db *db)
{
    if (db == NULL || db->conn == NULL || db->mode != DB_PERSISTENT)
        return -1;
    return PQsocket(db->conn);
}

unsigned
db_epoch(const struct db *db)
{
    return db != NULL ? db->epoch : 0;
}

int
db_idle_check(struct db *db)
{
    const char *why;
    PGnotify *n;

    if (db->conn == NULL)
        return DB_UNAVAILABLE;
    db->fatal[0] = '\0';
    /* PQisBusy parses what was read: a FATAL reaches on_notice there. */
    if (PQconsumeInput(db->conn) && !PQisBusy(db->conn) &&
        PQstatus(db->conn) == CONNECTION_OK && db->fatal[0] == '\0') {
        while ((n = PQnotifies(db->conn)) != NULL)
            PQfreemem(n);
        return DB_OK;
    }
    why = db->fatal[0] != '\0' ? db->fatal : PQerrorMessage(db->conn);
    log_warn("db: the connection ended while idle: %.*s", msg_len(why), why);
    sb_db_down(sb_self(), why, (size_t)msg_len(why));
    db_close(db);
    /* No request was on it, so none to try again; the next connection is
     * due at once, not after a backoff (nothing has failed yet), and a
     * request that comes meanwhile waits for it (db_connect). */
    db->lost = 1;
    db->broke = 0;
    db->backoff_ms = 0;
    db->next_try_ms = 0;
    db->eager = EAGER_LOOP;
    return DB_UNAVAILABLE;
}

void
db_request_done(struct db *db)
{
    db->retried = 0;
    if (db->mode == DB_PER_REQUEST)
        db_close(db);
}

/*
 * The waits for answers.  Every statement is sent on the non-blocking
 * socket, and its results awaited with poll() until the answer's deadline
 * (db.h); when it passes the connection is closed, not cancelled.
 */

/*
 * lost: the connection failed under statement what: closed, so that the
 * next call makes a new one (and a read may be run once more on it, see
 * reconnected()).  Results: DB_UNAVAILABLE.
 */
static int
lost(struct db *db, const char *what)
{
    const char *msg = PQerrorMessage(db->conn);

    log_warn("db: %s: connection lost: %.*s", what, msg_len(msg), msg);
    sb_db_down(sb_self(), msg, (size_t)msg_len(msg));
    db->broke = 1;
    db_close(db);
    db->lost = 1;
    return DB_UNAVAILABLE;
}

/*
 * stalled: no answer within ms: the server or the network stopped.  The
 * connection is closed, never cancelled (PQcancel opens a connection and
 * waits for it: the very thing that does not answer), nor tried again at
 * once: the backoff starts, and the calls in it answer without waiting.
 * Results: DB_UNAVAILABLE.
 */
static int
stalled(struct db *db, const char *what, int64_t ms)
{
    char why[128];

    db_close(db);
    db->broke = 0;
    back_off(db);
    log_warn("db: %s: no answer within %lld ms; connection closed (next try "
             "in %d ms)",
             what, (long long)ms, db->backoff_ms);
    snprintf(why, sizeof(why), "%s: no answer within %lld ms", what,
             (long long)ms);
    sb_db_down(sb_self(), why, strlen(why));
    return DB_UNAVAILABLE;
}

/*
 * take: the connection's next result (NULL: the end of a statement's
 * results), awaited at most the answer's deadline, what is queued being
 * sent meanwhile.  Results: DB_OK with *res set, or DB_UNAVAILABLE (the
 * connection is closed, by lost() or stalled()).
 */
static int
take(struct db *db, const char *what, PGresult **res)
{
    PGconn *conn = db->conn;
    int64_t ms = answer_ms(db), deadline = now_ms() + ms, left;
    struct pollfd p;
    int flushed;

    *res = NULL;
    for (;;) {
        if ((flushed = PQflush(conn)) == -1)
            return lost(db, what);
        if (!PQisBusy(conn))
            break;
        if ((left = deadline - now_ms()) <= 0)
            return stalled(db, what, ms);
        p.fd = PQsocket(conn);
        p.events = POLLIN | (flushed == 1 ? POLLOUT : 0);
        p.revents = 0;
        if (poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left) == -1 &&
            errno != EINTR)
            return lost(db, what);
        if ((p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn))
            return lost(db, what);
    }
    *res = PQgetResult(conn);
    return DB_OK;
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

/* is_cancelled: the statement was cancelled: statement_timeout, or a
 * cancel request (pg_cancel_backend). */
static int
is_cancelled(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return state != NULL && strcmp(state, "57014") == 0;
}

/*
 * judged: a statement's result, res (consumed when it is not returned):
 * res itself when it succeeded (*rc DB_OK); else NULL, *rc set and the
 * failure logged.  A cancelled statement (statement_timeout) is the
 * database's unavailability, but leaves its connection in step: it is
 * kept.  Any other failure of the kind closes the connection.
 */
static PGresult *
judged(struct db *db, const struct stmt *st, PGresult *res, int *rc)
{
    ExecStatusType status = PQresultStatus(res);
    const char *msg = PQresultErrorMessage(res);

    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        *rc = DB_OK;
        return res;
    }
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s",
             PQresultErrorField(res, PG_DIAG_SQLSTATE)
                 ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                 : "");
    if (is_cancelled(res) && PQstatus(db->conn) == CONNECTION_OK) {
        log_warn("db: %s: %.*s", st->name, msg_len(msg), msg);
        *rc = DB_UNAVAILABLE;
    } else if (is_unavailable(db, res)) {
        msg = PQerrorMessage(db->conn);
        log_warn("db: %s: connection lost: %.*s", st->name, msg_len(msg), msg);
        sb_db_down(sb_self(), msg, (size_t)msg_len(msg));
        db->broke = PQstatus(db->conn) != CONNECTION_OK;
        db_close(db);
        db->lost = 1;
        *rc = DB_UNAVAILABLE;
    } else {
        log_err("db: %s: %.*s (SQLSTATE %s)", st->name, msg_len(msg), msg,
                db->sqlstate[0] != '\0' ? db->sqlstate : "none");
        *rc = DB_ERROR;
    }
    PQclear(res);
    return NULL;
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
    PGresult *res, *more;
    int sent;

    if ((*rc = db_connect(db)) != DB_OK)
        return NULL;
    if (db->mode == DB_PERSISTENT)
        sent = PQsendQueryPrepared(db->conn, st->name, st->nparams, values,
                                   lengths, formats, 1);
    else
        sent = PQsendQueryParams(db->conn, st->sql, st->nparams, st->types,
                                 values, lengths, formats, 1);
    if (!sent) {
        *rc = lost(db, st->name);
        return NULL;
    }
    if ((*rc = take(db, st->name, &res)) != DB_OK)
        return NULL;
    /* Then its end: the connection is ready for the next statement. */
    while ((*rc = take(db, st->name, &more)) == DB_OK && more != NULL)
        PQclear(more);
    if (*rc != DB_OK) {
        PQclear(res);
        return NULL;
    }
    return judged(db, st, res, rc);
}
/*
 * reconnected: after a read that failed because its connection was dead,
 * and that connection was not made for this very call: it died while the
 * worker was idle (PostgreSQL restarted, or dropped it, since the last
 * request).  Reconnect at once, backoff or not, so that the caller may try
 * its read once more.  Only reads do: a write whose answer was lost may
 * have been committed.  A connection that stalled (no answer in time) is
 * not dead this way, and is not tried again: its backoff holds.
 * Results: whether there is a connection again.
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

/*
 * pipeline_broken: the connection failed in the middle of a pipeline:
 * close it, so that the next request starts on a new one, never out of
 * step with what the server still has to send.
 */
static int
pipeline_broken(struct db *db, const char *what)
{
    const char *msg = PQerrorMessage(db->conn);

    log_warn("db: world_read pipeline: %s: %.*s", what, msg_len(msg), msg);
    sb_db_down(sb_self(), msg, (size_t)msg_len(msg));
    db->broke = PQstatus(db->conn) != CONNECTION_OK;
    db_close(db);
    db->lost = 1;
    return DB_UNAVAILABLE;
}

/*
 * pipeline_end: after a statement's result, its end (NULL) then its Sync.
 * Results: DB_OK, or DB_UNAVAILABLE (the connection is closed).
 */
static int
pipeline_end(struct db *db)
{
    PGresult *res;

    if (take(db, "world_read", &res) != DB_OK)
        return DB_UNAVAILABLE;
    if (res != NULL) {
        PQclear(res);
        return pipeline_broken(db, "more results than statements");
    }
    if (take(db, "world_read", &res) != DB_OK)
        return DB_UNAVAILABLE;
    if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
        PQclear(res);
        return pipeline_broken(db, "a Sync missing");
    }
    PQclear(res);
    return DB_OK;
}

/*
 * world_read_pipelined: every read of a request in one pipeline: each
 * SELECT is its own prepared statement followed by its own Sync (the
 * TechEmpower rule), all sent before any answer is read, so the request
 * costs about one round trip instead of n.  An error in one statement
 * ends at its Sync: the other answers are still read, so the connection
 * stays in step.  Each answer is awaited within the answer's deadline
 * (take()), what is not sent yet going out meanwhile.
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
        if (take(db, "world_read", &res) != DB_OK)
            return DB_UNAVAILABLE;
        if (res == NULL)
            return pipeline_broken(db, "a result missing");
        cancelled = 0;
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            if (rc == DB_OK)
                rc = world_one(res, ids[i], &out[i]);
        } else if (PQresultStatus(res) != PGRES_PIPELINE_ABORTED) {
            if (rc == DB_OK) {
                rc = is_unavailable(db, res) ? DB_UNAVAILABLE : DB_ERROR;
                log_err("db: world_read: %.*s",
                        msg_len(PQresultErrorMessage(res)),
                        PQresultErrorMessage(res));
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
        if (pipeline_end(db) != DB_OK)
            return DB_UNAVAILABLE;
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
