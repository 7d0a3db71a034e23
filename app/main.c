/*
 * tfb-fcgi: a FastCGI responder for the TechEmpower benchmark routes.
 *
 * One process answers one request at a time on the listening socket it
 * inherits on fd 0 (spawn-fcgi, multiwatch, lighttpd's bin-path, our
 * supervisor, systemd's StandardInput=socket), on fd 3 under systemd's
 * LISTEN_FDS, or on one it binds itself (--bind).  It holds one PostgreSQL
 * connection for its whole life, opened here, after any fork; two with
 * --db-read: the reads' (opened here) and the primary's for /updates
 * (opened by the first /updates).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "allow.h"
#include "cache.h"
#include "db.h"
#include "exitcode.h"
#include "handler.h"
#include "listener.h"
#include "log.h"
#include "opt.h"
#include "proctitle.h"
#include "scoreboard.h"
#include "version.h"
#include "worker.h"

struct options {
    const char *bind;
    int backlog;
    const char *conninfo;
    const char *read_conninfo;
    int db_mode; /* enum db_mode */
    /* --db-timeout, --db-connect-timeout; -1: db.h's defaults */
    long db_timeout_ms, db_connect_timeout_ms;
    long max_requests;
    long cache_ttl;
    const char *log_file;
    const char *access_log;
    int log_level; /* enum log_level */
    long read_timeout_ms;
    long write_timeout_ms;
    long idle_timeout_ms;
    int max_conns;
    int request_max;
    int server_timing;
    long slow_ms;
    int timing; /* index in on_off: 0 on */
    const char *web_server_addrs;
    int help;
    int version;
};

#define AT(field) offsetof(struct options, field)

static const char *const on_off[] = {"on", "off", NULL};

/* In enum db_mode's order. */
static const char *const db_modes[] = {"persistent", "per-request", NULL};

/* Help lines: at most 48 columns, so that --help fits 80. */
static const struct opt opts[] = {
    {"bind", 'b', OPT_STRING, AT(bind), 0, 0, NULL, NULL, "ADDR",
     "bind ADDR instead: a unix socket path, or\n"
     "HOST:PORT (no HOST: 127.0.0.1)"},
    {"backlog", 'B', OPT_INT, AT(backlog), 1, 65535, NULL, NULL, "N",
     "listen backlog with --bind (default 4096)"},
    {"db", 'd', OPT_STRING, AT(conninfo), 0, 0, NULL, NULL, "CONNINFO",
     "libpq connection string, over the PG*\n"
     "environment variables; with --db-read, the\n"
     "primary, for /updates alone"},
    {"db-read", 0, OPT_STRING, AT(read_conninfo), 0, 0, NULL, "TFB_DB_READ",
     "CONNINFO",
     "the reads' own connection string (/db,\n"
     "/queries, /fortunes, /cached-queries): a\n"
     "standby, or hosts to try in turn"},
    {"db-mode", 0, OPT_CHOICE, AT(db_mode), 0, 0, db_modes, NULL, "MODE",
     "persistent (default), or per-request:\n"
     "EXPERIMENT, connect for every request"},
    {"db-timeout", 0, OPT_DURATION, AT(db_timeout_ms), 0, 0, NULL,
     "TFB_DB_TIMEOUT", "TIME",
     "wait TIME at most for a database answer,\n"
     "then close the connection and answer 503\n"
     "(5s; never below the session's\n"
     "statement_timeout + 100ms; under a pool,\n"
     "statement_timeout is set 100ms below it,\n"
     "or below the pool's limit if lower)"},
    {"db-connect-timeout", 0, OPT_DURATION, AT(db_connect_timeout_ms), 0, 0,
     NULL, "TFB_DB_CONNECT_TIMEOUT", "TIME",
     "connect to each database host and prepare\n"
     "the statements within TIME, else try the\n"
     "next host (2s)"},
    {"max-requests", 'm', OPT_LONG, AT(max_requests), 0, 1L << 40, NULL,
     "TFB_MAX_REQUESTS", "N",
     "exit after N requests, to be replaced by the\n"
     "supervisor (0: never); under tfb-spawn, its\n"
     "--max-requests too, whichever comes first"},
    {"cache-ttl", 0, OPT_LONG, AT(cache_ttl), 0, 1L << 30, NULL, NULL,
     "SECONDS",
     "refill /cached-queries' cache after SECONDS\n"
     "(0: never)"},
    {"read-timeout", 0, OPT_DURATION, AT(read_timeout_ms), 0, 0, NULL, NULL,
     "TIME",
     "close a connection whose request has not\n"
     "come whole within TIME (5s)"},
    {"write-timeout", 0, OPT_DURATION, AT(write_timeout_ms), 0, 0, NULL,
     "TFB_WRITE_TIMEOUT", "TIME",
     "close a connection whose peer has not read\n"
     "its answer within TIME (5s)"},
    {"idle-timeout", 0, OPT_DURATION, AT(idle_timeout_ms), 0, 0, NULL, NULL,
     "TIME", "close a kept connection idle for TIME (120s)"},
    {"max-conns", 0, OPT_INT, AT(max_conns), 1, 65536, NULL, NULL, "N",
     "connections held at once, kept ones\n"
     "included (256)"},
    {"request-max", 0, OPT_INT, AT(request_max), 1024, 131072, NULL, NULL,
     "BYTES",
     "a request's records, at most; a larger one\n"
     "is answered 413, then its connection\n"
     "closed (65536)"},
    {"server-timing", 0, OPT_FLAG, AT(server_timing), 0, 0, NULL,
     "TFB_SERVER_TIMING", NULL,
     "answer with a Server-Timing header: the\n"
     "read, database and application times"},
    {"slow-ms", 0, OPT_LONG, AT(slow_ms), 0, 3600000, NULL, "TFB_SLOW_MS", "MS",
     "log each request that takes MS or more,\n"
     "with its phases (0: never, the default)"},
    {"timing", 0, OPT_CHOICE, AT(timing), 0, 0, on_off, "TFB_TIMING", "on|off",
     "time each request's phases for the status\n"
     "page (on, the default); off: count only,\n"
     "to measure what timing costs"},
    {"web-server-addrs", 0, OPT_STRING, AT(web_server_addrs), 0, 0, NULL,
     "FCGI_WEB_SERVER_ADDRS", "ADDRS",
     "front servers that may connect over TCP,\n"
     "comma-separated addresses (libfcgi's\n"
     "variable; default: any); unix-socket peers\n"
     "always may"},
    {"log-file", 'l', OPT_STRING, AT(log_file), 0, 0, NULL, NULL, "FILE",
     "append the log to FILE, not stderr"},
    {"access-log", 0, OPT_STRING, AT(access_log), 0, 0, NULL, "TFB_ACCESS_LOG",
     "PATH|-",
     "a line per request appended to PATH (-:\n"
     "stdout): time, method, path, status,\n"
     "bytes, the phases in us; buffered, written\n"
     "each second; reopened on SIGUSR1 (off)"},
    {"log-level", 0, OPT_CHOICE, AT(log_level), 0, 0, log_level_names, NULL,
     "LEVEL", "debug, info, warn or error (default: info)"},
    {"verbose", 'v', OPT_SET, AT(log_level), 0, LOG_DEBUG, NULL, NULL, NULL,
     "log debug lines (--log-level debug)"},
    {"quiet", 'q', OPT_SET, AT(log_level), 0, LOG_WARN, NULL, NULL, NULL,
     "log warnings and errors only"},
    {"version", 'V', OPT_FLAG, AT(version), 0, 0, NULL, NULL, NULL,
     "print the version and exit"},
    {"help", 'h', OPT_FLAG, AT(help), 0, 0, NULL, NULL, NULL, "this text"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void
usage(FILE *f)
{
    fprintf(f, "usage: tfb-fcgi [options]\n"
               "\n"
               "Serves the TechEmpower routes over FastCGI on the listening\n"
               "socket on fd 0 (or fd 3 with systemd's LISTEN_FDS).\n"
               "\n");
    opt_usage(f, opts, NOPTS);
    fprintf(f, "\n"
               "Other programs' variables: libpq's PG* (PGHOST, PGUSER,\n"
               "PGOPTIONS...) reach the database connection; systemd's\n"
               "LISTEN_FDS and LISTEN_PID name the socket; tfb-spawn's\n"
               "TFB_SCOREBOARD_FD and TFB_WORKER_SLOT name the pool's\n"
               "scoreboard slot, where the pool's request time limit (our\n"
               "statement_timeout goes below it) and max-requests are read.\n"
               "\n"
               "Exit status 2: a configuration error (do not respawn).\n");
}

static void
parse_options(int argc, char **argv, struct options *o)
{
    char err[512];

    o->backlog = 4096;
    o->db_mode = DB_PERSISTENT;
    o->db_timeout_ms = -1;
    o->db_connect_timeout_ms = -1;
    o->log_level = LOG_INFO;
    o->read_timeout_ms = 5000;
    o->write_timeout_ms = 5000;
    o->idle_timeout_ms = 120000;
    o->max_conns = 256;
    o->request_max = 65536;
    if (opt_parse(opts, NOPTS, o, argc, argv, 0, err, sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s (see --help)", err);
    if (o->read_timeout_ms == 0 || o->idle_timeout_ms == 0 ||
        o->write_timeout_ms == 0)
        log_fatal(EXITCODE_CONFIG, "--read-timeout, --write-timeout and "
                                   "--idle-timeout must be above 0");
    if (o->db_timeout_ms == 0 || o->db_connect_timeout_ms == 0)
        log_fatal(EXITCODE_CONFIG, "--db-timeout and --db-connect-timeout "
                                   "must be above 0");
    if (o->help) {
        usage(stdout);
        exit(EXITCODE_OK);
    }
    if (o->version) {
        printf("tfb-fcgi %s\n", tfb_version);
        exit(fflush(stdout) == 0 ? EXITCODE_OK : EXITCODE_ERROR);
    }
}

/*
 * open_db: the database handles, not yet connected.  One by default, for
 * every route.  With --db-read, the reads get a handle of their own that
 * prefers a standby among the hosts it lists, and /updates one on --db
 * (or the PG* variables) that takes only a server accepting writes:
 * libpq's target_session_attrs, unless the strings say otherwise.
 */
static void
open_db(const struct options *o, struct handler_ctx *ctx)
{
    enum db_mode mode = (enum db_mode)o->db_mode;

    if (o->read_conninfo == NULL) {
        if ((ctx->db = db_new(o->conninfo, mode)) == NULL)
            log_fatal(EXITCODE_CONFIG, "cannot use the database settings");
        db_set_timeouts(ctx->db, o->db_connect_timeout_ms, o->db_timeout_ms);
        return;
    }
    if ((ctx->db = db_new(o->read_conninfo, mode)) == NULL)
        log_fatal(EXITCODE_CONFIG, "--db-read: cannot use it");
    db_set_timeouts(ctx->db, o->db_connect_timeout_ms, o->db_timeout_ms);
    if ((ctx->db_write = db_new(o->conninfo, mode)) == NULL)
        log_fatal(EXITCODE_CONFIG, "cannot use the database settings");
    db_set_target(ctx->db, "prefer-standby");
    db_set_target(ctx->db_write, "read-write");
    db_set_timeouts(ctx->db_write, o->db_connect_timeout_ms, o->db_timeout_ms);
}

/*
 * statement_timeout_ms: PostgreSQL's statement_timeout under a pool's
 * request time limit of limit_ms, so that the database gives up first
 * and the request answers 503 before the pool kills us: a tenth of the
 * limit below it, that margin kept within [100 ms, 1 s].  At least 1.
 */
static long
statement_timeout_ms(long limit_ms)
{
    long margin = limit_ms / 10;

    if (margin < 100)
        margin = 100;
    if (margin > 1000)
        margin = 1000;
    return limit_ms - margin >= 1 ? limit_ms - margin : 1;
}

/* first_limit: of two request counts (0: none), the one reached first. */
static long
first_limit(long a, long b)
{
    if (a <= 0)
        return b > 0 ? b : 0;
    return b > 0 && b < a ? b : a;
}

/*
 * pool_word: what a pool (tfb-spawn) wrote for this worker in its
 * scoreboard slot, by our own rules: we leave after its max-requests or
 * our own --max-requests, whichever comes first, and PostgreSQL gives up
 * on a statement before the pool's request time limit would kill us, and
 * before our own answer deadline (answer_ms, --db-timeout's) would close
 * the connection: a slow statement is then cancelled by the server and
 * the connection stays, while the deadline catches only a server that
 * stopped answering.  Without a pool the slot is our own, and says nothing.
 */
static void
pool_word(struct handler_ctx *ctx, struct worker_opts *wo, long answer_ms)
{
    struct sb_slot *slot = sb_attach_env();
    uint64_t pool_max = sb_max_requests(slot);
    long limit = (long)sb_request_limit_ms(), st;

    wo->max_requests =
        first_limit(wo->max_requests,
                    pool_max > (uint64_t)LONG_MAX ? LONG_MAX : (long)pool_max);
    if (limit <= 0)
        return;
    st = statement_timeout_ms(limit);
    if (answer_ms - DB_TIMEOUT_MARGIN_MS < st)
        st = answer_ms - DB_TIMEOUT_MARGIN_MS > 0
                 ? answer_ms - DB_TIMEOUT_MARGIN_MS
                 : 1;
    if (db_set_statement_timeout(ctx->db, st) == -1 ||
        (ctx->db_write != NULL &&
         db_set_statement_timeout(ctx->db_write, st) == -1))
        log_fatal(EXITCODE_ERROR, "out of memory");
    log_info("the pool's request time limit is %.1f s: statement_timeout "
             "%ld ms",
             (double)limit / 1000, st);
}

/*
 * The listening socket, found or bound the way tfb-spawn does it (spawn/
 * listener.h): --bind, else systemd's LISTEN_FDS, else fd 0.
 */
static void
listen_socket(const struct options *o, struct listener *l)
{
    /* A unix socket we bind gets the mode the umask leaves, as libfcgi's
     * FCGX_OpenSocket gave it. */
    mode_t mask = umask(0);
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0777 & (int)~mask};
    char err[512];

    umask(mask);
    if (listener_open(l, o->bind, o->backlog, &perm, err, sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s", err);
}

/* title: ps shows "tfb-fcgi: worker 3", the slot its pool gave it. */
static void
title(void)
{
    int slot = sb_self_index();

    if (slot >= 0)
        proctitle_set("tfb-fcgi: worker %d", slot);
    else
        proctitle_set("tfb-fcgi: worker");
}

int
main(int argc, char **argv)
{
    struct options o = {0};
    struct worker_opts wo = {0};
    struct handler_ctx ctx = {0};
    struct listener l;
    struct timespec ts;
    char err[256];
    int ret;

    argv = proctitle_init(argc, argv, "tfb-fcgi");
    log_init("tfb-fcgi", LOG_INFO);
    parse_options(argc, argv, &o);
    log_init("tfb-fcgi", o.log_level);
    /* spawn-fcgi leaves a worker's stderr nowhere: give it a file. */
    if (o.log_file != NULL && log_open_file(o.log_file) == -1)
        log_fatal(EXITCODE_CONFIG, "cannot open %s: %s", o.log_file,
                  strerror(errno));

    if (allow_parse(&wo.allow, o.web_server_addrs, err, sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG,
                  "--web-server-addrs or FCGI_WEB_SERVER_ADDRS: %s", err);
    listen_socket(&o, &l);
    wo.listen_fd = l.fd;
    wo.max_requests = o.max_requests;
    wo.read_timeout_ms = o.read_timeout_ms;
    wo.write_timeout_ms = o.write_timeout_ms;
    wo.idle_timeout_ms = o.idle_timeout_ms;
    wo.max_conns = o.max_conns;
    wo.request_max = (size_t)o.request_max;
    wo.log_file = o.log_file;
    wo.server_timing = o.server_timing;
    wo.slow_ms = o.slow_ms;
    if (o.timing == 1 && (wo.server_timing || wo.slow_ms > 0))
        log_fatal(EXITCODE_CONFIG, "--server-timing and --slow-ms need "
                                   "--timing on");
    sb_timing(o.timing == 0);
    if (o.access_log != NULL) {
        if (o.timing == 1)
            log_fatal(EXITCODE_CONFIG, "--access-log needs --timing on");
        if ((wo.access = access_open(o.access_log, err, sizeof(err))) == NULL)
            log_fatal(EXITCODE_CONFIG, "%s", err);
    }
    open_db(&o, &ctx);
    pool_word(&ctx, &wo, o.db_timeout_ms > 0 ? o.db_timeout_ms : DB_TIMEOUT_MS);
    title();
    if ((ctx.cache = cache_new((unsigned)o.cache_ttl)) == NULL)
        log_fatal(EXITCODE_ERROR, "out of memory");
    clock_gettime(CLOCK_REALTIME, &ts);
    ctx.rng = ((uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_nsec ^
               (uint64_t)ts.tv_sec) |
              1;

    /* Warm: the first request finds its connection ready.  A database
     * that is down now is not fatal; requests get 503 until it is back,
     * and the worker tries again by itself meanwhile (worker.c).
     * The primary's connection of --db-read waits for the first /updates:
     * a worker that never serves one never holds it. */
    if (o.db_mode == DB_PERSISTENT)
        db_connect(ctx.db);
    if (o.db_mode == DB_PER_REQUEST)
        log_warn("db-mode per-request: a new connection for every request "
                 "(an experiment, not for production)");

    ret = worker_run(&ctx, &wo);

    access_close(wo.access);
    cache_free(ctx.cache);
    db_free(ctx.db_write);
    db_free(ctx.db);
    listener_close(&l);
    return ret == 0 ? EXITCODE_OK : EXITCODE_ERROR;
}
