/*
 * conn.h: a worker's FastCGI connections: each one's state and deadline,
 * the bytes it has sent us and not yet used, and the bytes we owe it.
 *
 * A worker holds many connections at once: new ones whose request is
 * still arriving, kept ones (FCGI_KEEP_CONN) waiting for the next, and
 * ones whose answer waits for the peer to read it.  None of them costs
 * the worker more than a descriptor, a slot here and its buffers; it
 * serves whichever has a whole request.  Each state has a deadline, past
 * which the worker closes the connection:
 *
 *   CONN_READING  --read-timeout, from the first byte of a request (or the
 *                 accept); records that do not complete a request do not
 *                 renew it
 *   CONN_KEPT     --idle-timeout, from the end of the last answer
 *   CONN_WRITING  --write-timeout, from the answer's first write; and the
 *                 read deadline still, when the answer is one of ours in
 *                 the middle of a request (a management record's)
 *
 * Kept connections are a cache: they are on a list, least recently kept
 * first, and when the table is full the worker closes the head of it to
 * take a new connection (conns_lru).
 *
 * The table is fixed-size, made once; the slots are stable, so a
 * connection's address may serve as its epoll cookie.  Nothing here
 * waits: the sockets are non-blocking.
 */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum conn_state {
    CONN_FREE,    /* an empty slot */
    CONN_READING, /* part of a request has come: the read deadline runs */
    CONN_KEPT,    /* between requests: the idle deadline runs */
    CONN_WRITING  /* an answer waits to be written: nothing more is read */
};

struct conn {
    int fd;
    enum conn_state state;
    int64_t deadline_ns;      /* the state's, CLOCK_MONOTONIC */
    int64_t read_deadline_ns; /* a request's, while one is arriving; else 0 */
    unsigned skip;            /* a request id answered FCGI_UNKNOWN_ROLE */
    int64_t read_start_ns;    /* the first byte of the request coming, or 0 */
    int polled;               /* in the worker's epoll set */
    int pollout;              /* ... with EPOLLOUT: an answer is queued */
    int close_after;          /* close once the queued answer is written */
    int shed; /* close after its next answer (let go: the pool grew, or the
                 worker leaves) */
    unsigned ready; /* the turn its budget ran out in, or 0 */
    int drained;    /* the last read found the socket empty */
    /* The worker's own: where wire_judge last stopped (see worker.c). */
    size_t judged_len, judged_whole;
    /* A request over --request-max, read to its end and dropped. */
    unsigned discard_id; /* its id, or 0 */
    size_t discard_left; /* bytes of the current record still to drop */
    size_t discarded;    /* of the request so far */
    int discard_end;     /* its last record is being dropped */
    unsigned char *in;   /* received: in[in_off, in_len) not yet used */
    size_t in_off, in_len, in_cap;
    unsigned char *out; /* to write: out[out_off, out_len) */
    size_t out_off, out_len, out_cap;
    struct conn *prev, *next; /* on the kept list, while CONN_KEPT */
};

struct conns {
    struct conn *c;
    int max;                      /* slots */
    int used;                     /* slots not CONN_FREE */
    int high;                     /* no slot at or above this is used */
    int kept;                     /* connections in CONN_KEPT */
    struct conn *oldest, *newest; /* the kept list */
};

/* conns_init: room for max connections.  Results: 0, or -1 (ENOMEM). */
int conns_init(struct conns *t, int max);

/* conns_free: closes every connection, frees the table. */
void conns_free(struct conns *t);

/*
 * conn_open: a slot for fd, reading until deadline_ns (the read deadline
 * of its first request).  Results: the slot, or NULL when the table is
 * full.
 */
struct conn *conn_open(struct conns *t, int fd, int64_t deadline_ns);

/*
 * conn_set: c moves to state (not CONN_FREE) with deadline_ns.  Entering
 * CONN_KEPT puts it at the kept list's end; leaving it takes it off.
 */
void conn_set(struct conns *t, struct conn *c, enum conn_state state,
              int64_t deadline_ns);

/*
 * conn_close: close its descriptor (which leaves any epoll set; -1: closed
 * already), free its buffers and the slot.
 */
void conn_close(struct conns *t, struct conn *c);

/* conns_lru: the kept connection kept longest ago, or NULL when none is. */
struct conn *conns_lru(const struct conns *t);

/* conns_count: how many connections are in state. */
int conns_count(const struct conns *t, enum conn_state state);

/* conns_deadline: the earliest deadline, or INT64_MAX when none. */
int64_t conns_deadline(const struct conns *t);

/*
 * conns_expire: close every connection in state (CONN_FREE: any) whose
 * deadline is at or before now.  Results: how many were closed.
 */
int conns_expire(struct conns *t, enum conn_state state, int64_t now);

/*
 * conn_recv: bytes from c's socket appended to what it holds, at most max
 * of them, its buffer grown as needed up to cap bytes (what was used is
 * dropped first).  Never waits.
 * Results: how many (> 0); 0 when none is waiting (EAGAIN); -1 when the
 * peer has closed (errno 0) or failed, or the buffer is full at cap or
 * cannot grow (ENOBUFS, ENOMEM).
 */
ssize_t conn_recv(struct conn *c, size_t max, size_t cap);

/*
 * conn_pending: bytes of a request wait, held or still in the socket (a
 * kept connection whose next request came but is not read yet: closing
 * it would lose that request).
 */
int conn_pending(const struct conn *c);

/* conn_consume: the first n bytes held (n at most what it holds) are used. */
void conn_consume(struct conn *c, size_t n);

/* conn_held: how many bytes received are not used yet. */
size_t conn_held(const struct conn *c);

/*
 * conn_send: write iov[0, n) now, as much of it as the socket takes, and
 * queue the rest behind anything queued already (then nothing is written
 * now: the order stays).  Never waits.
 * Results: 0 (conn_queued says whether something waits), or -1 when the
 * peer is gone or memory ran out; the caller then closes c.
 */
int conn_send(struct conn *c, const struct iovec *iov, int n);

/*
 * conn_flush: write what is queued, until it is all written or the socket
 * is full.  Results: 1 when nothing is left, 0 when some is, -1 when the
 * peer is gone.
 */
int conn_flush(struct conn *c);

/* conn_queued: how many bytes wait to be written. */
size_t conn_queued(const struct conn *c);

#endif
