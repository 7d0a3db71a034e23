/*
 * worker.h: the accept loop of one responder process.
 */
#ifndef WORKER_H
#define WORKER_H

#include "allow.h"
#include "handler.h"

struct worker_opts {
    int listen_fd;      /* the FastCGI listening socket, shared by the pool */
    long max_requests;  /* exit after this many (0: never) */
    struct allow allow; /* front servers that may connect over TCP */
};

/*
 * worker_run: accept and answer requests one at a time until told to stop.
 *
 * SIGTERM and SIGQUIT stop it gracefully: the request in flight, if any,
 * is answered, then worker_run returns; an idle worker returns at once.
 * Results: 0 when stopped or recycled (max_requests), -1 when the
 * listening socket failed for good (logged).
 */
int worker_run(struct handler_ctx *ctx, const struct worker_opts *opts);

#endif
