/*
 * conn.c: see conn.h.
 */
#include "conn.h"

#include <stdlib.h>
#include <unistd.h>

int
conns_init(struct conns *t, int max)
{
    t->c = calloc((size_t)max, sizeof(*t->c));
    t->max = max;
    t->used = 0;
    t->high = 0;
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
    c->fd = fd;
    c->state = CONN_READING;
    c->deadline_ns = deadline_ns;
    c->skip = 0;
    c->read_start_ns = 0;
    c->polled = 0;
    t->used++;
    if (i >= t->high)
        t->high = i + 1;
    return c;
}

void
conn_close(struct conns *t, struct conn *c)
{
    if (c->fd != -1)
        close(c->fd);
    c->fd = -1;
    c->state = CONN_FREE;
    t->used--;
    while (t->high > 0 && t->c[t->high - 1].state == CONN_FREE)
        t->high--;
}

int
conns_count(const struct conns *t, enum conn_state state)
{
    int i, n = 0;

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
