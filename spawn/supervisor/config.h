/*
 * config.h: tfb-spawn's options, from the environment and the command line.
 *
 * Every option has a long flag and an environment variable TFB_SPAWN_<NAME>
 * (--max-requests is TFB_SPAWN_MAX_REQUESTS); a flag wins over the
 * environment, which wins over the default; no other variable is read
 * (the Makefile's WORKERS is deploy/stack's, which passes -w).  The worker
 * command follows "--".
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdio.h>

/* --cpu-affinity: where a worker may run. */
enum config_affinity {
    CONFIG_AFFINITY_NONE, /* wherever the scheduler likes */
    CONFIG_AFFINITY_SLOT  /* the worker in slot i on allowed CPU i mod n */
};

struct config {
    int workers;              /* -w: pool size at start */
    int max_workers;          /* --workers-max: the ceiling, SIGTTIN's too */
    int pm;                   /* enum pm_mode: how the pool finds its size */
    int workers_min;          /* --workers-min: the floor of a pool that sizes
                                 itself */
    int spare_min, spare_max; /* --pm dynamic: idle workers kept */
    long idle_ms;             /* --idle-timeout: idle this long, fewer */
    const char *bind;         /* NULL: use the inherited socket */
    int backlog;
    const char *socket_user, *socket_group; /* NULL: --user, --group */
    int socket_mode;                        /* unix socket's mode bits */
    const char *user, *group;               /* privilege drop, as root */
    const char *pid_file, *log_file;
    int log_level;           /* enum log_level */
    long graceful_ms;        /* graceful stop: SIGKILL after this */
    long request_timeout_ms; /* 0: no request time limit */
    long start_timeout_ms;   /* a new worker counts as ready after this */
    long max_requests;       /* 0: workers are never recycled */
    long max_requests_jitter;
    int cpu_affinity;   /* enum config_affinity */
    const char *status; /* the status page's socket, or NULL */
    const char *pool;   /* the pool's name, on the status page */
    char **worker_argv; /* NULL: tfb-fcgi next to tfb-spawn */
    int help;           /* --help was given */
    int version;        /* --version was given */
    int check;          /* --check: validate, start nothing */
};

/*
 * config_parse: defaults, then the environment, then argv (getopt_long;
 * argv is permuted as getopt does).  cores is the default pool size.
 *
 * The pool's size: --pm static (the default) keeps -w workers (the
 * cores); -w auto is --pm auto.  For the modes that size the pool
 * (pm.h), -w is the size at start (auto: the cores; dynamic: php-fpm's
 * start_servers, --spare-min + (--spare-max - --spare-min) / 2; ondemand:
 * --workers-min), within --workers-min (1; ondemand 0) and --workers-max
 * (64, or -w if larger; --max-workers is its older name).  --spare-min
 * and --spare-max (1 and 3) belong to dynamic alone, --idle-timeout (10 s)
 * to ondemand and auto, and --workers-min to the three: any of them with
 * a mode it does not belong to is an error, as is a -w out of the bounds.
 * Results: 0, or -1 with a message a user can act on in err.
 */
int config_parse(struct config *c, int argc, char **argv, int cores, char *err,
                 size_t errlen);

/* config_usage: the --help text, every option with its variable. */
void config_usage(FILE *fp, const char *progname);

#endif
