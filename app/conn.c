/*
 * conn.c: see conn.h.
 */
#include "conn.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection's first input buffer: a request from nginx fits it. */
#define IN_FIRST 4096

int
conns_init(struct conns *t, int max)
{
    memset(t, 0, sizeof(*t));
    t->c = calloc((size_t)max, sizeof(*t->c));
    t->max = max;
    return t->c == NULL ? -1 : 0;
}

void
conns_free(struct conns *t)
{
    int i;

    for (i = 0; i < t->high; i++)
        if (t->c[i].state != CONN_FREE)
            conn_close(t, &t->c[i]);
    free(t->c);
    t->c = NULL;
}

struct conn *
conn_open(struct conns *t, int fd, int64_t deadline_ns)
{
    struct conn *c;
    int i;

    if (t->used == t->max)
        return NULL;
    for (i = 0; t->c[i].state != CONN_FREE; i++)
        continue;
    c = &t->c[i];
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->state = CONN_READING;
    c->deadline_ns = c->read_deadline_ns = deadline_ns;
    t->used++;
    if (i >= t->high)
        t->high = i + 1;
    return c;
}

/* unkeep: c off the kept list. */
static void
unkeep(struct conns *t, struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->oldest = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        t->newest = c->prev;
    c->prev = c->next = NULL;
    t->kept--;
}

void
conn_set(struct conns *t, struct conn *c, enum conn_state state,
         int64_t deadline_ns)
{
    assert(c->state != CONN_FREE && state != CONN_FREE);
    if (c->state == CONN_KEPT && state != CONN_KEPT)
        unkeep(t, c);
    else if (c->state != CONN_KEPT && state == CONN_KEPT) {
        c->prev = t->newest;
        c->next = NULL;
        if (t->newest != NULL)
            t->newest->next = c;
        else
            t->oldest = c;
        t->newest = c;
        t->kept++;
        /* Idle, it holds nothing: a buffer a large request grew goes. */
        if (c->in_cap > IN_FIRST && c->in_off == c->in_len) {
            free(c->in);
            c->in = NULL;
            c->in_off = c->in_len = c->in_cap = 0;
        }
    }
    c->state = state;
    c->deadline_ns = deadline_ns;
}

void
conn_close(struct conns *t, struct conn *c)
{
    assert(c->state != CONN_FREE);
    if (c->state == CONN_KEPT)
        unkeep(t, c);
    if (c->fd != -1)
        close(c->fd);
    c->fd = -1;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->state = CONN_FREE;
    t->used--;
    while (t->high > 0 && t->c[t->high - 1].state == CONN_FREE)
        t->high--;
}

struct conn *
conns_lru(const struct conns *t)
{
    return t->oldest;
}

int
conns_count(const struct conns *t, enum conn_state state)
{
    int i, n = 0;

    if (state == CONN_KEPT)
        return t->kept;
    for (i = 0; i < t->high; i++)
        n += t->c[i].state == state;
    return n;
}

int64_t
conns_deadline(const struct conns *t)
{
    int64_t next = INT64_MAX;
    int i;

    for (i = 0; i < t->high; i++)
        if (t->c[i].state != CONN_FREE && t->c[i].deadline_ns < next)
            next = t->c[i].deadline_ns;
    return next;
}

int
conns_expire(struct conns *t, enum conn_state state, int64_t now)
{
    int i, n = 0;

    for (i = 0; i < t->high; i++) {
        struct conn *c = &t->c[i];

        if (c->state != CONN_FREE &&
            (state == CONN_FREE || c->state == state) &&
            c->deadline_ns <= now) {
            conn_close(t, c);
            n++;
        }
    }
    return n;
}

/*
 * in_room: room at the end of c's input: the bytes used are dropped, then
 * the buffer doubles, up to cap.  Results: the room, 0 when full at cap,
 * or -1 (ENOMEM).
 */
static ssize_t
in_room(struct conn *c, size_t cap)
{
    size_t want;
    unsigned char *p;

    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    if (c->in_len == c->in_cap && c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len == c->in_cap && c->in_cap < cap) {
        want = c->in_cap == 0 ? IN_FIRST : 2 * c->in_cap;
        if (want > cap)
            want = cap;
        if ((p = realloc(c->in, want)) == NULL)
            return -1;
        c->in = p;
        c->in_cap = want;
    }
    return (ssize_t)(c->in_cap - c->in_len);
}

ssize_t
conn_recv(struct conn *c, size_t max, size_t cap)
{
    ssize_t room = in_room(c, cap), got;

    if (room <= 0) {
        errno = room == 0 ? ENOBUFS : ENOMEM;
        return -1;
    }
    if ((size_t)room < max)
        max = (size_t)room;
    do
        got = recv(c->fd, c->in + c->in_len, max, MSG_DONTWAIT);
    while (got == -1 && errno == EINTR);
    if (got == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (got == 0) {
        errno = 0;
        return -1;
    }
    if (got > 0)
        c->in_len += (size_t)got;
    return got;
}

int
conn_pending(const struct conn *c)
{
    char byte;

    return c->in_len > c->in_off ||
           recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

void
conn_consume(struct conn *c, size_t n)
{
    assert(n <= c->in_len - c->in_off);
    c->in_off += n;
}

size_t
conn_held(const struct conn *c)
{
    return c->in_len - c->in_off;
}

/* queue: p[0, n) behind what c has queued.  Results: 0, or -1 (ENOMEM). */
static int
queue(struct conn *c, const void *p, size_t n)
{
    size_t want;
    unsigned char *b;

    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (n > c->out_cap - c->out_len) {
        for (want = c->out_cap ? c->out_cap : 4096; want < c->out_len + n;)
            want *= 2;
        if ((b = realloc(c->out, want)) == NULL)
            return -1;
        c->out = b;
        c->out_cap = want;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

int
conn_send(struct conn *c, const struct iovec *iov, int n)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    ssize_t sent = 0;
    size_t skip;
    int i;

    if (conn_queued(c) == 0) {
        do
            sent = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (sent == -1 && errno == EINTR);
        if (sent == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (sent == -1)
            sent = 0;
    }
    for (i = 0, skip = (size_t)sent; i < n; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        if (queue(c, (const char *)iov[i].iov_base + skip,
                  iov[i].iov_len - skip) == -1)
            return -1;
        skip = 0;
    }
    return 0;
}

int
conn_flush(struct conn *c)
{
    ssize_t sent;

    while (c->out_off < c->out_len) {
        sent = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent == -1 && errno == EINTR)
            continue;
        if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (sent <= 0)
            return -1;
        c->out_off += (size_t)sent;
    }
    /* All written: an idle connection holds no output buffer. */
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    return 1;
}

size_t
conn_queued(const struct conn *c)
{
    return c->out_len - c->out_off;
}
