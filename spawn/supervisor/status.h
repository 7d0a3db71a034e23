/*
 * status.h: the pool's status page.
 *
 * php-fpm's pm.status_path, for a pool whose every worker may be busy: the
 * supervisor forks a status process of its own (no exec: it keeps the
 * scoreboard's mapping), which serves FastCGI on a socket of its own
 * (--status), to up to 16 clients at once, each within deadlines of its
 * own (status.c lists them), and never waits for a worker: one client
 * that holds a connection, asks in a loop or never reads delays no
 * other.  The front server routes /status there, from loopback only.
 * The page:
 *
 *   /status                php-fpm's fields, plain text, then the request
 *                          phases, the responses by class, reconnects
 *   /status?json           the same as JSON (php-fpm's key names)
 *   /status?full           and a block per worker (?json&full too)
 *   /status?prometheus     Prometheus' text format (also for an Accept of
 *                          text/plain;version=0.0.4 or
 *                          application/openmetrics-text)
 *
 * What a worker wrote (a route comes from a client) is escaped for each
 * format: in the text page backslash, control characters and bytes past
 * ASCII (\\, \n, \r, \t, \xHH), in JSON as JSON strings, in
 * Prometheus' labels backslash, double quote and newline.  There is no
 * HTML page.
 *
 * tfb-spawn status (the command) asks the same socket.
 */
#ifndef STATUS_H
#define STATUS_H

#include <stddef.h>

struct scoreboard;

struct status_info {
    const char *pool;      /* the pool's name */
    int listen_fd;         /* the pool's listening socket */
    int backlog;           /* its listen backlog as configured (0: unknown) */
    struct scoreboard *sb; /* the pool's scoreboard */
};

/* The page's formats. */
enum status_format { STATUS_TEXT, STATUS_JSON, STATUS_PROMETHEUS };

/*
 * status_format_of: the format a query string and an Accept header ask
 * for, and whether they ask for every worker (full).
 */
enum status_format status_format_of(const char *query, const char *accept,
                                    int *full);

/*
 * status_render: the page, malloc'd into *out (*len bytes), its content
 * type into *type.  Results: 0, or -1 (out of memory).
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
 * page in fmt, and write it to stdout, all within 5 s.  Results: 0, or -1
 * with a message in err naming the socket.
 */
int status_fetch(const char *path, const char *query, char *err, size_t errlen);

#endif
