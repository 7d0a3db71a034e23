/*
 * tfb-fcgi: a FastCGI responder for the TechEmpower benchmark routes.
 *
 * One process answers one request at a time on the listening socket it
 * inherits on fd 0 (spawn-fcgi, multiwatch, lighttpd's bin-path, our
 * supervisor, systemd's StandardInput=socket), on fd 3 under systemd's
 * LISTEN_FDS, or on one it binds itself (--bind).  It holds one PostgreSQL
 * connection for its whole life, opened here, after any fork.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "allow.h"
#include "cache.h"
#include "db.h"
#include "handler.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

/* Exit status of a configuration error: a supervisor must not respawn. */
#define EXIT_CONFIG 2

struct options {
    const char *bind;
    int backlog;
    const char *conninfo;
    enum db_mode db_mode;
    long max_requests;
    long cache_ttl;
    const char *log_file;
    enum log_level log_level;
};

static void
usage(FILE *f)
{
    fprintf(
        f, "usage: tfb-fcgi [options]\n"
           "\n"
           "Serves the TechEmpower routes over FastCGI on the listening\n"
           "socket on fd 0 (or fd 3 with systemd's LISTEN_FDS).\n"
           "\n"
           "  -b, --bind ADDR         bind ADDR instead: a unix socket path,\n"
           "                          or HOST:PORT (no HOST: 127.0.0.1)\n"
           "  -B, --backlog N         listen backlog with --bind [4096]\n"
           "  -d, --db CONNINFO       libpq connection string, over the PG*\n"
           "                          environment variables\n"
           "      --db-mode MODE      persistent (default), or per-request:\n"
           "                          EXPERIMENT, connect for every request\n"
           "  -m, --max-requests N    exit after N requests, to be replaced\n"
           "                          by the supervisor [TFB_MAX_REQUESTS, 0]\n"
           "      --cache-ttl SECONDS refill /cached-queries' cache after\n"
           "                          SECONDS [0: never]\n"
           "  -l, --log-file FILE     append the log to FILE, not stderr\n"
           "  -v, --verbose           log debug lines\n"
           "  -q, --quiet             log warnings and errors only\n"
           "  -h, --help              this text\n"
           "\n"
           "Exit status 2: a configuration error (do not respawn).\n");
}

static long
parse_long(const char *s, long min, long max, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        fatal(EXIT_CONFIG, "%s: '%s' is not a number from %ld to %ld", what, s,
              min, max);
    return v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
    enum { OPT_DB_MODE = 256, OPT_CACHE_TTL };
    static const struct option longopts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"backlog", required_argument, NULL, 'B'},
        {"db", required_argument, NULL, 'd'},
        {"db-mode", required_argument, NULL, OPT_DB_MODE},
        {"max-requests", required_argument, NULL, 'm'},
        {"cache-ttl", required_argument, NULL, OPT_CACHE_TTL},
        {"log-file", required_argument, NULL, 'l'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *env;
    int c;

    o->backlog = 4096;
    o->db_mode = DB_PERSISTENT;
    o->log_level = LOG_INFO;
    if ((env = getenv("TFB_MAX_REQUESTS")) != NULL && *env != '\0')
        o->max_requests = parse_long(env, 0, 1L << 40, "TFB_MAX_REQUESTS");
    while ((c = getopt_long(argc, argv, "b:B:d:m:l:vqh", longopts, NULL)) !=
           -1) {
        switch (c) {
        case 'b':
            o->bind = optarg;
            break;
        case 'B':
            o->backlog = (int)parse_long(optarg, 1, 65535, "--backlog");
            break;
        case 'd':
            o->conninfo = optarg;
            break;
        case OPT_DB_MODE:
            if (strcmp(optarg, "persistent") == 0)
                o->db_mode = DB_PERSISTENT;
            else if (strcmp(optarg, "per-request") == 0)
                o->db_mode = DB_PER_REQUEST;
            else
                fatal(EXIT_CONFIG,
                      "--db-mode: '%s' is neither persistent nor per-request",
                      optarg);
            break;
        case 'm':
            o->max_requests = parse_long(optarg, 0, 1L << 40, "--max-requests");
            break;
        case OPT_CACHE_TTL:
            o->cache_ttl = parse_long(optarg, 0, 1L << 30, "--cache-ttl");
            break;
        case 'l':
            o->log_file = optarg;
            break;
        case 'v':
            o->log_level = LOG_DEBUG;
            break;
        case 'q':
            o->log_level = LOG_WARN;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(EXIT_CONFIG);
        }
    }
    if (optind != argc)
        fatal(EXIT_CONFIG, "unexpected argument '%s' (see --help)",
              argv[optind]);
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
        fatal(EXIT_CONFIG, "%s", err);
}

int
main(int argc, char **argv)
{
    struct options o = {0};
    struct worker_opts wo = {0};
    struct ctx ctx = {0};
    struct listener l;
    struct timespec ts;
    char err[256];
    int ret;

    log_init("tfb-fcgi", LOG_INFO);
    parse_options(argc, argv, &o);
    log_init("tfb-fcgi", o.log_level);
    /* spawn-fcgi leaves a worker's stderr nowhere: give it a file. */
    if (o.log_file != NULL && log_open_file(o.log_file) == -1)
        fatal(EXIT_CONFIG, "cannot open %s: %s", o.log_file, strerror(errno));

    if (allow_parse(&wo.allow, getenv("FCGI_WEB_SERVER_ADDRS"), err,
                    sizeof(err)) == -1)
        fatal(EXIT_CONFIG, "FCGI_WEB_SERVER_ADDRS: %s", err);
    listen_socket(&o, &l);
    wo.listen_fd = l.fd;
    wo.max_requests = o.max_requests;
    if ((ctx.db = db_new(o.conninfo, o.db_mode)) == NULL)
        fatal(EXIT_CONFIG, "cannot use the database settings");
    if ((ctx.cache = cache_new((unsigned)o.cache_ttl)) == NULL)
        fatal(1, "out of memory");
    clock_gettime(CLOCK_REALTIME, &ts);
    ctx.rng = ((uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_nsec ^
               (uint64_t)ts.tv_sec) |
              1;

    /* Warm: the first request finds its connection ready.  A database
     * that is down now is not fatal; requests get 503 until it is back. */
    if (o.db_mode == DB_PERSISTENT)
        db_connect(ctx.db);
    if (o.db_mode == DB_PER_REQUEST)
        log_warn("db-mode per-request: a new connection for every request "
                 "(an experiment, not for production)");

    ret = worker_run(&ctx, &wo);

    cache_free(ctx.cache);
    db_free(ctx.db);
    listener_close(&l);
    return ret == 0 ? 0 : 1;
}
