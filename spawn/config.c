/*
 * config.c: tfb-spawn's options; see config.h.
 *
 * One table drives the three views of an option: getopt_long's, the
 * environment's and --help's, so that they cannot drift apart.
 */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

#define ENV_PREFIX "TFB_SPAWN_"
#define MAX_WORKERS_LIMIT 4096
#define DEFAULT_MAX_WORKERS 64

enum {
    OPT_BIND = 'b',
    OPT_GROUP = 'g',
    OPT_HELP = 'h',
    OPT_LOG_FILE = 'l',
    OPT_PID_FILE = 'p',
    OPT_USER = 'u',
    OPT_WORKERS = 'w',
    OPT_MAX_WORKERS = 256,
    OPT_BACKLOG,
    OPT_SOCKET_USER,
    OPT_SOCKET_GROUP,
    OPT_SOCKET_MODE,
    OPT_LOG_LEVEL,
    OPT_GRACEFUL,
    OPT_REQUEST_TIMEOUT,
    OPT_START_TIMEOUT,
    OPT_MAX_REQUESTS,
    OPT_JITTER
};

static const struct opt {
    const char *name;
    int key;
    const char *arg; /* NULL: a flag without argument, and no variable */
    const char *help;
} opts[] = {
    /* Help lines: at most 48 columns, so that --help fits 80. */
    {"workers", OPT_WORKERS, "N",
     "workers to start (default: online cores;\n"
     "also read from WORKERS)"},
    {"max-workers", OPT_MAX_WORKERS, "N",
     "ceiling for SIGTTIN (default: 64, or -w)"},
    {"bind", OPT_BIND, "ADDR",
     "bind ADDR instead of using an inherited\n"
     "socket: PATH (with a '/', or unix:PATH) for a\n"
     "unix socket, [HOST:]PORT for TCP, where HOST\n"
     "is 127.0.0.1 unless given ('*': every address)"},
    {"backlog", OPT_BACKLOG, "N", "listen backlog for --bind (default 4096)"},
    {"socket-user", OPT_SOCKET_USER, "USER",
     "owner of the unix socket (default: --user)"},
    {"socket-group", OPT_SOCKET_GROUP, "GROUP",
     "group of the unix socket (default: --group,\n"
     "else the socket user's group)"},
    {"socket-mode", OPT_SOCKET_MODE, "MODE",
     "mode of the unix socket, octal (default 0660)"},
    {"user", OPT_USER, "USER", "as root: run as USER once the socket is bound"},
    {"group", OPT_GROUP, "GROUP", "as root: run as GROUP (default: USER's)"},
    {"pid-file", OPT_PID_FILE, "PATH", "write the supervisor's pid to PATH"},
    {"log-file", OPT_LOG_FILE, "PATH",
     "log to PATH, workers too (default: stderr)"},
    {"log-level", OPT_LOG_LEVEL, "LEVEL",
     "debug, info, warn or error (default: info)"},
    {"graceful-timeout", OPT_GRACEFUL, "TIME",
     "SIGKILL a stopping worker after TIME (30s)"},
    {"request-timeout", OPT_REQUEST_TIMEOUT, "TIME",
     "SIGKILL a worker busy on one request for more\n"
     "than TIME, and give PostgreSQL a lower\n"
     "statement_timeout (30s; 0: neither)"},
    {"start-timeout", OPT_START_TIMEOUT, "TIME",
     "a new worker that has not reported accepting\n"
     "after TIME counts as ready (10s)"},
    {"max-requests", OPT_MAX_REQUESTS, "N",
     "recycle a worker after N requests (0: never)"},
    {"max-requests-jitter", OPT_JITTER, "N",
     "add 0..N to each worker's max-requests"},
    {"help", OPT_HELP, NULL, "print this help and exit"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* env_name: TFB_SPAWN_ followed by the option's name in capitals. */
static void
env_name(const struct opt *o, char *buf, size_t len)
{
    size_t n = strlen(ENV_PREFIX), i;

    snprintf(buf, len, "%s", ENV_PREFIX);
    for (i = 0; o->name[i] != '\0' && n + 1 < len; i++, n++)
        buf[n] = o->name[i] == '-' ? '_' : (char)toupper(o->name[i]);
    buf[n] = '\0';
}

static int
parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int
config_duration_ms(const char *s, long *ms)
{
    const long day_ms = 24L * 3600 * 1000;
    char *end;
    long v, unit;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60 * 1000;
    else
        return -1;
    if (v > day_ms / unit)
        return -1;
    *ms = v * unit;
    return 0;
}

/* set: apply one option's value; `from` names it in error messages. */
static int
set(struct config *c, int key, const char *val, const char *from, char *err,
    size_t errlen)
{
    long v;

    switch (key) {
    case OPT_WORKERS:
    case OPT_MAX_WORKERS:
        if (parse_long(val, 1, MAX_WORKERS_LIMIT, &v) == -1)
            return errmsg(err, errlen, "%s: '%s' is not a number in [1, %d]",
                          from, val, MAX_WORKERS_LIMIT);
        *(key == OPT_WORKERS ? &c->workers : &c->max_workers) = (int)v;
        break;
    case OPT_BACKLOG:
        if (parse_long(val, 1, 1 << 20, &v) == -1)
            return errmsg(err, errlen, "%s: '%s' is not a number in [1, %d]",
                          from, val, 1 << 20);
        c->backlog = (int)v;
        break;
    case OPT_SOCKET_MODE: {
        char *end;

        errno = 0;
        v = strtol(val, &end, 8);
        if (errno != 0 || end == val || *end != '\0' || v < 0 || v > 0777)
            return errmsg(err, errlen,
                          "%s: '%s' is not an octal mode such as 0660", from,
                          val);
        c->socket_mode = (int)v;
        break;
    }
    case OPT_LOG_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        int i;

        for (i = 0; i < 4 && strcmp(val, names[i]) != 0; i++)
            continue;
        if (i == 4)
            return errmsg(err, errlen,
                          "%s: '%s' is not one of debug, info, warn, error",
                          from, val);
        c->log_level = (enum log_level)i;
        break;
    }
    case OPT_GRACEFUL:
    case OPT_REQUEST_TIMEOUT:
    case OPT_START_TIMEOUT:
        if (config_duration_ms(val, &v) == -1)
            return errmsg(err, errlen,
                          "%s: '%s' is not a duration such as 30, 30s, 500ms "
                          "or 2m",
                          from, val);
        if (key == OPT_GRACEFUL)
            c->graceful_ms = v;
        else if (key == OPT_REQUEST_TIMEOUT)
            c->request_timeout_ms = v;
        else
            c->start_timeout_ms = v;
        break;
    case OPT_MAX_REQUESTS:
    case OPT_JITTER:
        if (parse_long(val, 0, 1000000000, &v) == -1)
            return errmsg(err, errlen,
                          "%s: '%s' is not a number in [0, 1000000000]", from,
                          val);
        *(key == OPT_MAX_REQUESTS ? &c->max_requests
                                  : &c->max_requests_jitter) = v;
        break;
    case OPT_BIND:
    case OPT_SOCKET_USER:
    case OPT_SOCKET_GROUP:
    case OPT_USER:
    case OPT_GROUP:
    case OPT_PID_FILE:
    case OPT_LOG_FILE:
        if (*val == '\0')
            return errmsg(err, errlen, "%s: empty value", from);
        if (key == OPT_BIND)
            c->bind = val;
        else if (key == OPT_SOCKET_USER)
            c->socket_user = val;
        else if (key == OPT_SOCKET_GROUP)
            c->socket_group = val;
        else if (key == OPT_USER)
            c->user = val;
        else if (key == OPT_GROUP)
            c->group = val;
        else if (key == OPT_PID_FILE)
            c->pid_file = val;
        else
            c->log_file = val;
        break;
    case OPT_HELP:
        c->help = 1;
        break;
    default:
        return errmsg(err, errlen, "%s: unknown option", from);
    }
    return 0;
}

static void
defaults(struct config *c, int cores)
{
    memset(c, 0, sizeof(*c));
    c->workers = cores >= 1 ? cores : 1;
    c->backlog = 4096;
    c->socket_mode = 0660;
    c->log_level = LOG_INFO;
    c->graceful_ms = 30000;
    c->request_timeout_ms = 30000;
    c->start_timeout_ms = 10000;
}

static int
from_env(struct config *c, char *err, size_t errlen)
{
    char name[64];
    const char *val;
    size_t i;

    /* WORKERS first, so that TFB_SPAWN_WORKERS overrides it. */
    if ((val = getenv("WORKERS")) != NULL && *val != '\0' &&
        set(c, OPT_WORKERS, val, "WORKERS", err, errlen) == -1)
        return -1;
    for (i = 0; i < NOPTS; i++) {
        if (opts[i].arg == NULL)
            continue;
        env_name(&opts[i], name, sizeof(name));
        if ((val = getenv(name)) != NULL &&
            set(c, opts[i].key, val, name, err, errlen) == -1)
            return -1;
    }
    return 0;
}

static int
from_argv(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    /* '+': stop at the first word that is not ours, the worker command. */
    static const char shortopts[] = "+:b:g:hl:p:u:w:";
    struct option longopts[NOPTS + 1];
    char from[64];
    size_t i;
    int ch;

    for (i = 0; i < NOPTS; i++) {
        longopts[i].name = opts[i].name;
        longopts[i].has_arg = opts[i].arg ? required_argument : no_argument;
        longopts[i].flag = NULL;
        longopts[i].val = opts[i].key;
    }
    memset(&longopts[NOPTS], 0, sizeof(longopts[NOPTS]));

    optind = 0; /* glibc: start afresh, so that tests may parse twice */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (ch == '?') {
            if (optopt != 0)
                return errmsg(err, errlen, "unknown option '-%c'", optopt);
            return errmsg(err, errlen, "unknown option '%s'", argv[optind - 1]);
        }
        if (ch == ':')
            return errmsg(err, errlen, "option '%s' needs a value",
                          argv[optind - 1]);
        for (i = 0; opts[i].key != ch; i++)
            continue;
        snprintf(from, sizeof(from), "--%s", opts[i].name);
        if (set(c, ch, optarg ? optarg : "", from, err, errlen) == -1)
            return -1;
    }
    if (optind < argc)
        c->worker_argv = &argv[optind];
    return 0;
}

int
config_parse(struct config *c, int argc, char **argv, int cores, char *err,
             size_t errlen)
{
    defaults(c, cores);
    if (from_env(c, err, errlen) == -1 ||
        from_argv(c, argc, argv, err, errlen) == -1)
        return -1;
    if (c->max_workers == 0)
        c->max_workers =
            c->workers > DEFAULT_MAX_WORKERS ? c->workers : DEFAULT_MAX_WORKERS;
    if (c->workers > c->max_workers)
        return errmsg(err, errlen, "%d workers is more than --max-workers %d",
                      c->workers, c->max_workers);
    if (c->graceful_ms == 0)
        return errmsg(err, errlen, "--graceful-timeout must be above 0");
    if (c->group != NULL && c->user == NULL)
        return errmsg(err, errlen, "--group needs --user");
    return 0;
}

void
config_usage(FILE *fp, const char *progname)
{
    char name[64], left[64];
    const char *p, *nl;
    size_t i;

    fprintf(fp,
            "usage: %s [OPTION]... [--] [WORKER [ARG]...]\n"
            "\n"
            "Supervise a pool of FastCGI workers sharing one listening "
            "socket: the\n"
            "inherited fd 0 (spawn-fcgi, systemd StandardInput=socket), "
            "LISTEN_FDS\n"
            "(systemd), or --bind.  WORKER defaults to tfb-fcgi next to "
            "this program.\n"
            "\n",
            progname);
    for (i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];

        if (o->key < 256)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->key, o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
        else
            snprintf(left, sizeof(left), "    --%s %s", o->name, o->arg);
        fprintf(fp, "  %-28s ", left);
        for (p = o->help; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
            fprintf(fp, "%.*s\n  %-28s ", (int)(nl - p), p, "");
        fprintf(fp, "%s\n", p);
        if (o->arg != NULL) {
            env_name(o, name, sizeof(name));
            fprintf(fp, "  %-28s [env %s]\n", "", name);
        }
    }
    fprintf(fp, "\n"
                "TIME is 30 (seconds), 30s, 500ms or 2m.\n"
                "\n"
                "Signals: TERM, QUIT graceful stop; INT immediate stop; HUP "
                "rolling restart;\n"
                "TTIN one worker more; TTOU one worker less; USR1 reopen the "
                "log file (and\n"
                "roll the workers onto it).\n"
                "\n"
                "Exit status: 0 stopped, 1 system error, 2 configuration error "
                "(also when\n"
                "every worker exits with status 2).\n");
}
