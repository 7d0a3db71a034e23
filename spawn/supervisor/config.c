/*
 * config.c: tfb-spawn's options; see config.h.
 *
 * One table (opt.h) drives the three views of an option: the flag, the
 * variable and --help, so that they cannot drift apart.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "errmsg.h"
#include "log.h"
#include "opt.h"
#include "pm.h"

#define MAX_WORKERS_LIMIT 4096
#define DEFAULT_MAX_WORKERS 64

#define AT(field) offsetof(struct config, field)

/* In enum config_affinity's order. */
static const char *const affinities[] = {"none", "slot", NULL};
/* In enum pm_mode's order. */
static const char *const pms[] = {"static", "dynamic", "ondemand", "auto",
                                  NULL};
/* What -w takes besides a number: -1 is auto. */
static const char *const workers_words[] = {"auto", NULL};
#define WORKERS_AUTO (-1)
/* Not given: each mode has its own default. */
#define UNSET (-1000)

/* Help lines: at most 48 columns, so that --help fits 80.  Every option
 * with a value has the variable TFB_SPAWN_<NAME> (unit-tested). */
static const struct opt opts[] = {
    {"workers", 'w', OPT_INT, AT(workers), 1, MAX_WORKERS_LIMIT, workers_words,
     "TFB_SPAWN_WORKERS", "N|auto",
     "workers to start (default: online cores);\n"
     "auto: --pm auto"},
    {"pm", 0, OPT_CHOICE, AT(pm), 0, 0, pms, "TFB_SPAWN_PM", "MODE",
     "how the pool finds its size: static (-w\n"
     "workers, the default), dynamic (spare\n"
     "workers kept), ondemand (a worker when a\n"
     "request waits), auto (the size that serves\n"
     "most, found by trying)"},
    {"workers-min", 0, OPT_INT, AT(workers_min), 0, MAX_WORKERS_LIMIT, NULL,
     "TFB_SPAWN_WORKERS_MIN", "N",
     "the fewest workers of a pool sizing itself\n"
     "(1; ondemand 0)"},
    {"workers-max", 0, OPT_INT, AT(max_workers), 1, MAX_WORKERS_LIMIT, NULL,
     "TFB_SPAWN_WORKERS_MAX", "N",
     "the most workers, SIGTTIN's ceiling too\n"
     "(default: 64, or -w if larger)"},
    {"max-workers", 0, OPT_INT, AT(max_workers), 1, MAX_WORKERS_LIMIT, NULL,
     "TFB_SPAWN_MAX_WORKERS", "N", "the same as --workers-max"},
    {"spare-min", 0, OPT_INT, AT(spare_min), 0, MAX_WORKERS_LIMIT, NULL,
     "TFB_SPAWN_SPARE_MIN", "N", "--pm dynamic: at least N idle workers (1)"},
    {"spare-max", 0, OPT_INT, AT(spare_max), 0, MAX_WORKERS_LIMIT, NULL,
     "TFB_SPAWN_SPARE_MAX", "N", "--pm dynamic: at most N idle workers (3)"},
    {"idle-timeout", 0, OPT_DURATION, AT(idle_ms), 0, 0, NULL,
     "TFB_SPAWN_IDLE_TIMEOUT", "TIME",
     "--pm ondemand, auto: workers not needed for\n"
     "TIME go (10s)"},
    {"bind", 'b', OPT_STRING, AT(bind), 0, 0, NULL, "TFB_SPAWN_BIND", "ADDR",
     "bind ADDR instead of using an inherited\n"
     "socket: PATH (with a '/', or unix:PATH) for a\n"
     "unix socket, [HOST:]PORT for TCP, where HOST\n"
     "is 127.0.0.1 unless given ('*': every address)"},
    {"backlog", 0, OPT_INT, AT(backlog), 1, 1 << 20, NULL, "TFB_SPAWN_BACKLOG",
     "N", "listen backlog for --bind (default 4096)"},
    {"socket-user", 0, OPT_STRING, AT(socket_user), 0, 0, NULL,
     "TFB_SPAWN_SOCKET_USER", "USER",
     "owner of the unix socket (default: --user)"},
    {"socket-group", 0, OPT_STRING, AT(socket_group), 0, 0, NULL,
     "TFB_SPAWN_SOCKET_GROUP", "GROUP",
     "group of the unix socket (default: --group,\n"
     "else the socket user's group)"},
    {"socket-mode", 0, OPT_OCTAL, AT(socket_mode), 0, 0777, NULL,
     "TFB_SPAWN_SOCKET_MODE", "MODE",
     "mode of the unix socket, octal (default 0660)"},
    {"user", 'u', OPT_STRING, AT(user), 0, 0, NULL, "TFB_SPAWN_USER", "USER",
     "as root: run as USER once the socket is bound"},
    {"group", 'g', OPT_STRING, AT(group), 0, 0, NULL, "TFB_SPAWN_GROUP",
     "GROUP", "as root: run as GROUP (default: USER's)"},
    {"pid-file", 'p', OPT_STRING, AT(pid_file), 0, 0, NULL,
     "TFB_SPAWN_PID_FILE", "PATH", "write the supervisor's pid to PATH"},
    {"log-file", 'l', OPT_STRING, AT(log_file), 0, 0, NULL,
     "TFB_SPAWN_LOG_FILE", "PATH",
     "log to PATH, workers too (default: stderr)"},
    {"log-level", 0, OPT_CHOICE, AT(log_level), 0, 0, log_level_names,
     "TFB_SPAWN_LOG_LEVEL", "LEVEL",
     "debug, info, warn or error (default: info)"},
    {"graceful-timeout", 0, OPT_DURATION, AT(graceful_ms), 0, 0, NULL,
     "TFB_SPAWN_GRACEFUL_TIMEOUT", "TIME",
     "SIGKILL a stopping worker after TIME (30s)"},
    {"request-timeout", 0, OPT_DURATION, AT(request_timeout_ms), 0, 0, NULL,
     "TFB_SPAWN_REQUEST_TIMEOUT", "TIME",
     "SIGKILL a worker busy on one request for more\n"
     "than TIME (30s; 0: never); the workers read\n"
     "it in the scoreboard (tfb-fcgi: PostgreSQL's\n"
     "statement_timeout goes below it)"},
    {"start-timeout", 0, OPT_DURATION, AT(start_timeout_ms), 0, 0, NULL,
     "TFB_SPAWN_START_TIMEOUT", "TIME",
     "a new worker that has not reported accepting\n"
     "after TIME counts as ready (10s)"},
    {"max-requests", 0, OPT_LONG, AT(max_requests), 0, 1000000000, NULL,
     "TFB_SPAWN_MAX_REQUESTS", "N",
     "a worker leaves after N requests, to be\n"
     "replaced (0: never); it reads its N in its\n"
     "scoreboard slot"},
    {"max-requests-jitter", 0, OPT_LONG, AT(max_requests_jitter), 0, 1000000000,
     NULL, "TFB_SPAWN_MAX_REQUESTS_JITTER", "N",
     "add 0..N to each worker's max-requests"},
    {"status", 0, OPT_STRING, AT(status), 0, 0, NULL, "TFB_SPAWN_STATUS",
     "PATH",
     "serve the status page on the unix socket PATH\n"
     "(a process of its own: it answers while\n"
     "every worker is busy)"},
    {"pool", 0, OPT_STRING, AT(pool), 0, 0, NULL, "TFB_SPAWN_POOL", "NAME",
     "the pool's name on the status page (tfb-fcgi)"},
    {"cpu-affinity", 0, OPT_CHOICE, AT(cpu_affinity), 0, 0, affinities,
     "TFB_SPAWN_CPU_AFFINITY", "HOW",
     "none (default), or slot: the worker in slot i\n"
     "runs on CPU i mod n, for placement experiments"},
    {"check", 't', OPT_FLAG, AT(check), 0, 0, NULL, NULL, NULL,
     "check the options, the worker, the socket\n"
     "and the files' paths, start nothing, and exit\n"
     "0, or 2 with the error (php-fpm -t, nginx -t)"},
    {"version", 'V', OPT_FLAG, AT(version), 0, 0, NULL, NULL, NULL,
     "print the version and exit"},
    {"help", 'h', OPT_FLAG, AT(help), 0, 0, NULL, NULL, NULL,
     "print this help and exit"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void
defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->workers = UNSET;
    c->pm = UNSET;
    c->workers_min = c->spare_min = c->spare_max = UNSET;
    c->idle_ms = UNSET;
    c->backlog = 4096;
    c->socket_mode = 0660;
    c->log_level = LOG_INFO;
    c->graceful_ms = 30000;
    c->request_timeout_ms = 30000;
    c->start_timeout_ms = 10000;
    c->pool = "tfb-fcgi";
}

/* only: an option given to a mode it does not belong to. */
static int
only(const struct config *c, int given, const char *flag, const char *modes,
     char *err, size_t errlen)
{
    if (given)
        return errmsg(err, errlen, "%s belongs to --pm %s, not --pm %s", flag,
                      modes, pm_mode_name((enum pm_mode)c->pm));
    return 0;
}

/* start_default: -w when not given, for c's mode (config.h), within
 * the bounds. */
static int
start_default(const struct config *c, int cores)
{
    int n;

    switch (c->pm) {
    case PM_DYNAMIC:
        n = c->spare_min + (c->spare_max - c->spare_min) / 2;
        break;
    case PM_ONDEMAND:
        n = c->workers_min;
        break;
    default:
        n = cores >= 1 ? cores : 1;
        break;
    }
    if (c->pm != PM_STATIC && n < c->workers_min)
        n = c->workers_min;
    return n < c->max_workers ? n : c->max_workers;
}

/*
 * sizing: the pool's size options as config.h says, checked together.
 * Results: 0, or -1 with err set.
 */
static int
sizing(struct config *c, int cores, char *err, size_t errlen)
{
    int given_w = c->workers != UNSET, auto_w = c->workers == WORKERS_AUTO;

    if (auto_w && c->pm != UNSET && c->pm != PM_AUTO)
        return errmsg(err, errlen, "-w auto is --pm auto, not --pm %s",
                      pm_mode_name((enum pm_mode)c->pm));
    if (c->pm == UNSET)
        c->pm = auto_w ? PM_AUTO : PM_STATIC;
    if (c->pm == PM_STATIC &&
        only(c, c->workers_min != UNSET, "--workers-min",
             "dynamic, ondemand or auto", err, errlen) == -1)
        return -1;
    if (c->pm != PM_DYNAMIC && (only(c, c->spare_min != UNSET, "--spare-min",
                                     "dynamic", err, errlen) == -1 ||
                                only(c, c->spare_max != UNSET, "--spare-max",
                                     "dynamic", err, errlen) == -1))
        return -1;
    if ((c->pm == PM_STATIC || c->pm == PM_DYNAMIC) &&
        only(c, c->idle_ms != UNSET, "--idle-timeout", "ondemand or auto", err,
             errlen) == -1)
        return -1;
    if (c->workers_min == UNSET)
        c->workers_min = c->pm == PM_ONDEMAND ? 0 : 1;
    if (c->spare_min == UNSET)
        c->spare_min = 1;
    if (c->spare_max == UNSET)
        c->spare_max = c->spare_min > 3 ? c->spare_min : 3;
    if (c->idle_ms == UNSET)
        c->idle_ms = 10000;
    if (c->max_workers == 0)
        c->max_workers = given_w && !auto_w && c->workers > DEFAULT_MAX_WORKERS
                             ? c->workers
                             : DEFAULT_MAX_WORKERS;
    if (c->workers_min > c->max_workers)
        return errmsg(err, errlen,
                      "--workers-min %d is more than --workers-max %d",
                      c->workers_min, c->max_workers);
    if (c->spare_min > c->spare_max)
        return errmsg(err, errlen, "--spare-min %d is more than --spare-max %d",
                      c->spare_min, c->spare_max);
    if (c->pm == PM_DYNAMIC && c->spare_max > c->max_workers)
        return errmsg(err, errlen,
                      "--spare-max %d is more than --workers-max %d",
                      c->spare_max, c->max_workers);
    if (!given_w || auto_w)
        c->workers = start_default(c, cores);
    if (c->workers > c->max_workers)
        return errmsg(err, errlen, "%d workers is more than --workers-max %d",
                      c->workers, c->max_workers);
    if (c->workers < c->workers_min)
        return errmsg(err, errlen, "%d workers is fewer than --workers-min %d",
                      c->workers, c->workers_min);
    return 0;
}

int
config_parse(struct config *c, int argc, char **argv, int cores, char *err,
             size_t errlen)
{
    int rest;

    defaults(c);
    if ((rest = opt_parse(opts, NOPTS, c, argc, argv, 1, err, errlen)) == -1)
        return -1;
    if (rest < argc)
        c->worker_argv = &argv[rest];
    if (sizing(c, cores, err, errlen) == -1)
        return -1;
    if (c->graceful_ms == 0)
        return errmsg(err, errlen, "--graceful-timeout must be above 0");
    if (c->group != NULL && c->user == NULL)
        return errmsg(err, errlen, "--group needs --user");
    return 0;
}

void
config_usage(FILE *fp, const char *progname)
{
    fprintf(fp,
            "usage: %s [OPTION]... [--] [WORKER [ARG]...]\n"
            "       %s status [--watch[=SECONDS]] SOCKET\n"
            "              [full|json|prometheus|openmetrics|top|ping]\n"
            "\n"
            "Supervise a pool of FastCGI workers sharing one listening "
            "socket: the\n"
            "inherited fd 0 (spawn-fcgi, systemd StandardInput=socket), "
            "LISTEN_FDS\n"
            "(systemd), or --bind.  WORKER defaults to tfb-fcgi next to "
            "this program.\n"
            "The second form prints the status page of a pool started "
            "with --status\n"
            "(once, or every SECONDS, 2 by default, as top does).\n"
            "\n",
            progname, progname);
    opt_usage(fp, opts, NOPTS);
    fprintf(fp, "\n"
                "TIME is 30 (seconds), 30s, 500ms or 2m.\n"
                "\n"
                "Environment: the TFB_SPAWN_* variables above, and "
                "systemd's LISTEN_FDS and\n"
                "LISTEN_PID (socket activation).  The workers get the "
                "environment as it is,\n"
                "plus TFB_SCOREBOARD_FD and TFB_WORKER_SLOT, which name "
                "their scoreboard slot:\n"
                "there each reads the request time limit and its "
                "max-requests.\n"
                "\n"
                "Signals: TERM, QUIT graceful stop; INT immediate stop; HUP "
                "rolling restart;\n"
                "TTIN one worker more; TTOU one worker less; USR1 reopen the "
                "log file (and\n"
                "roll the workers onto it); USR2 re-execute in place (the "
                "binary now at this\n"
                "path, the same options and pid, the socket and the workers "
                "kept, then\n"
                "rolled), unless the new binary's --check fails; any other "
                "is logged and\n"
                "ignored.\n"
                "\n"
                "Exit status: 0 stopped, 1 system error, 2 configuration error "
                "(also when\n"
                "every worker exits with status 2).\n");
}
