/*
 * status.h: the pool's status page.
 *
 * php-fpm's pm.status_path and ping.path, for a pool whose every worker
 * may be busy: the supervisor forks a status process of its own (no exec:
 * it keeps the scoreboard's mapping), which serves FastCGI on a socket of
 * its own (--status), to up to 16 clients at once, each within deadlines
 * of its own (status.c lists them), and never waits for a worker: one
 * client that holds a connection, asks in a loop or never reads delays no
 * other.  The front server routes /status and /ping there, from loopback
 * only.  The page (page.c renders it):
 *
 *   /status                php-fpm's fields, plain text, then the rates,
 *                          the request phases, the responses by class,
 *                          reconnects, the health line
 *   /status?json           the same as JSON (php-fpm's key names)
 *   /status?full           and a block per worker (?json&full too)
 *   /status?prometheus     Prometheus' text format (also for an Accept of
 *                          text/plain;version=0.0.4), with the histograms
 *                          of request durations by route and of each
 *                          phase; ?full adds a series per worker slot
 *   /status?openmetrics    the same in OpenMetrics (also for an Accept of
 *                          application/openmetrics-text), ending "# EOF"
 *   /status?html           a page for a browser that refreshes itself
 *                          (its script is /status?js)
 *   /status?top            the compact view of tfb-spawn status --watch
 *   /ping, /status?ping    the health answer: one line, "ok: ..." with 200
 *                          when a worker can serve (alive, not serving
 *                          one request for 10 s, or half the request time
 *                          limit when less) and the database answers one
 *                          (or no worker says anything of a database),
 *                          "fail: ..." with 503 otherwise
 *
 * Any other word in the query, or two formats at once, is answered 400
 * with the list of what is known: never a page of another format.
 *
 * The counters are the pool's since it started: a recycled worker's
 * counts stay (scoreboard.h's totals), so that they never go down.
 *
 * tfb-spawn status (the command) asks the same socket.
 */
#ifndef STATUS_H
#define STATUS_H

#include <stddef.h>

struct pm_report;
struct scoreboard;

struct status_info {
    const char *pool;      /* the pool's name */
    int listen_fd;         /* the pool's listening socket */
    int backlog;           /* its listen backlog as configured (0: unknown) */
    struct scoreboard *sb; /* the pool's scoreboard */
    /* The pool's size, its target and the last change's reason (pm.h),
     * in memory the supervisor writes; NULL: a static pool, as php-fpm's
     * "process manager: static" says. */
    const struct pm_report *size;
};

/* The page's formats; STATUS_BAD: a query it does not know. */
enum status_format {
    STATUS_TEXT,
    STATUS_JSON,
    STATUS_PROMETHEUS,
    STATUS_OPENMETRICS,
    STATUS_HTML,
    STATUS_JS,
    STATUS_TOP,
    STATUS_PING,
    STATUS_BAD
};

/*
 * status_format_of: the format a query string and an Accept header ask
 * for, and whether they ask for every worker (full).  A format in the
 * query wins; without one, an Accept naming OpenMetrics or Prometheus'
 * text format picks it.
 */
enum status_format status_format_of(const char *query, const char *accept,
                                    int *full);

/*
 * status_render: the page, malloc'd into *out (*len bytes), its content
 * type into *type.  Results: its HTTP status (200; 503 for a failing
 * health answer; 400 for STATUS_BAD, whose page lists the formats), or -1
 * (out of memory).
 */
int status_render(const struct status_info *info, enum status_format fmt,
                  int full, char **out, size_t *len, const char **type);

/*
 * status_serve: answer FastCGI requests on the listening socket fd until
 * killed; never returns.  Run in the status process; fd is made
 * non-blocking.
 */
_Noreturn void status_serve(int fd, const struct status_info *info);

/*
 * status_fetch: the command's side: ask the status socket at path for the
 * page the query names, and write it to stdout, all within 5 s.
 * Results: 0, or -1 with a message in err naming the socket, or the
 * status when it was not 200 (the page is written all the same: a
 * failing health answer, the list of formats).
 */
int status_fetch(const char *path, const char *query, char *err, size_t errlen);

#endif
