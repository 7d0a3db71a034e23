/*
 * conn.h: a worker's FastCGI connections, each with its deadline.
 *
 * A worker holds many connections at once: new ones whose request is
 * still arriving, and kept ones (FCGI_KEEP_CONN) waiting for the next.
 * Neither costs the worker more than a descriptor and a slot here; it
 * serves whichever has a whole request.  Each has a deadline: a request
 * must arrive whole within the read timeout, a kept connection may idle
 * for the idle timeout; past it, the worker closes it.
 *
 * The table is fixed-size, made once; the slots are stable, so a
 * connection's address may serve as its epoll cookie.
 */
#ifndef CONN_H
#define CONN_H

#include <stdint.h>

enum conn_state {
    CONN_FREE,    /* an empty slot */
    CONN_READING, /* part of a request has come: the read deadline runs */
    CONN_KEPT     /* between requests: the idle deadline runs */
};

struct conn {
    int fd;
    enum conn_state state;
    int64_t deadline_ns;   /* CLOCK_MONOTONIC */
    unsigned skip;         /* a request id answered FCGI_UNKNOWN_ROLE */
    int64_t read_start_ns; /* the first byte of the request coming, or 0 */
    int polled;            /* in the worker's epoll set */
};

struct conns {
    struct conn *c;
    int max;  /* slots */
    int used; /* slots not CONN_FREE */
    int high; /* no slot at or above this is used */
};

/* conns_init: room for max connections.  Results: 0, or -1 (ENOMEM). */
int conns_init(struct conns *t, int max);

/* conns_free: closes every connection, frees the table. */
void conns_free(struct conns *t);

/*
 * conn_open: a slot for fd, reading until deadline_ns.
 * Results: the slot, or NULL when the table is full.
 */
struct conn *conn_open(struct conns *t, int fd, int64_t deadline_ns);

/*
 * conn_close: close its descriptor (which leaves any epoll set; -1: closed
 * already) and free the slot.
 */
void conn_close(struct conns *t, struct conn *c);

/* conns_count: how many connections are in state. */
int conns_count(const struct conns *t, enum conn_state state);

/* conns_deadline: the earliest deadline, or INT64_MAX when none. */
int64_t conns_deadline(const struct conns *t);

/*
 * conns_expire: close every connection in state (CONN_FREE: any) whose
 * deadline is at or before now.  Results: how many were closed.
 */
int conns_expire(struct conns *t, enum conn_state state, int64_t now);

#endif
