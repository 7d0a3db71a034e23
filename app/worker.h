/*
 * worker.h: the connection loop of one responder process.
 */
#ifndef WORKER_H
#define WORKER_H

#include "allow.h"
#include "handler.h"

struct worker_opts {
    int listen_fd;        /* the FastCGI listening socket, shared by the pool */
    long max_requests;    /* exit after this many (0: never) */
    struct allow allow;   /* front servers that may connect over TCP */
    long read_timeout_ms; /* a request arrives whole within this, or its
                             connection is closed */
    long idle_timeout_ms; /* a kept connection idles at most this long */
    int max_conns;        /* connections held at once */
    size_t request_max;   /* bytes of one request's records, at most */
    const char *log_file; /* reopened on SIGUSR1; NULL: stderr as it is */
    int server_timing;    /* answer with a Server-Timing header */
    long slow_ms;         /* log requests at least this slow (0: never) */
};

/*
 * worker_run: hold connections, answer their requests one at a time, until
 * told to stop.
 *
 * SIGTERM, SIGQUIT and SIGHUP stop it gracefully: it accepts nothing more,
 * closes its kept connections, answers the requests still arriving (each within
 * the read timeout), then returns; an idle worker returns at once.
 * Results: 0 when stopped or recycled (max_requests), -1 when the
 * listening socket failed for good (logged).
 */
int worker_run(struct handler_ctx *ctx, const struct worker_opts *opts);

#endif
