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
    int workers;      /* -w: pool size at start */
    int max_workers;  /* ceiling for SIGTTIN */
    const char *bind; /* NULL: use the inherited socket */
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
 * Results: 0, or -1 with a message a user can act on in err.
 */
int config_parse(struct config *c, int argc, char **argv, int cores, char *err,
                 size_t errlen);

/* config_usage: the --help text, every option with its variable. */
void config_usage(FILE *fp, const char *progname);

#endif
