/*
 * test_conn.c: a worker's table of connections (app/conn.c): slots taken
 * and given back, a full table, the earliest deadline, and expiry by state
 * that closes the descriptors it frees and no others.
 */
#include "../../app/conn.c"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#include "harness.h"

/* open_fd: a descriptor of our own (one end of a pipe; the other closed). */
static int
open_fd(void)
{
    int p[2];

    if (pipe(p) == -1)
        return -1;
    close(p[1]);
    return p[0];
}

static int
is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void
test_slots(void)
{
    struct conns t;
    struct conn *a, *b, *c, *d;
    int fa = open_fd(), fb = open_fd(), fc = open_fd();

    ok(conns_init(&t, 3) == 0, "a table of 3");
    ok(conns_deadline(&t) == INT64_MAX, "empty: no deadline");
    a = conn_open(&t, fa, 300);
    b = conn_open(&t, fb, 100);
    c = conn_open(&t, fc, 200);
    ok(a && b && c && a != b && b != c, "three connections, three slots");
    ok(a && a->state == CONN_READING && a->fd == fa && a->skip == 0 &&
           a->read_start_ns == 0 && !a->polled,
       "a new connection is reading, nothing else set");
    d = conn_open(&t, 99, 0);
    ok(d == NULL && t.used == 3, "a full table takes no fourth");
    is_int(conns_deadline(&t), 100, "the earliest deadline");
    conn_close(&t, b);
    ok(!is_open(fb) && t.used == 2 && t.high == 3,
       "closing the middle one closes its descriptor and frees its slot");
    is_int(conns_deadline(&t), 200, "the next deadline");
    d = conn_open(&t, open_fd(), 50);
    ok(d == b, "a new connection takes the freed slot");
    conn_close(&t, c);
    ok(t.high == 2, "closing the last slot lowers high to the last one used");
    conn_close(&t, d);
    ok(t.high == 1 && t.used == 1, "and again, past every free slot");
    conns_free(&t);
    ok(!is_open(fa) && t.c == NULL, "conns_free closes what is left");
}

static void
test_expire(void)
{
    struct conns t;
    struct conn *c[4];
    int fd[4], i;

    ok(conns_init(&t, 8) == 0, "a table of 8");
    for (i = 0; i < 4; i++) {
        fd[i] = open_fd();
        c[i] = conn_open(&t, fd[i], 100 * (i + 1));
    }
    c[1]->state = CONN_KEPT;
    c[3]->state = CONN_KEPT;
    is_int(conns_count(&t, CONN_READING), 2, "2 reading");
    is_int(conns_count(&t, CONN_KEPT), 2, "2 kept");
    is_int(conns_expire(&t, CONN_KEPT, 150), 0, "no kept one due at 150");
    is_int(conns_expire(&t, CONN_READING, 300), 2,
           "reading ones due at 300: 2 (100 and 300)");
    ok(!is_open(fd[0]) && !is_open(fd[2]) && is_open(fd[1]) && is_open(fd[3]),
       "their descriptors closed, the kept ones' not");
    is_int(conns_expire(&t, CONN_FREE, 400), 2, "any state due at 400: 2");
    ok(t.used == 0 && t.high == 0 && !is_open(fd[1]) && !is_open(fd[3]),
       "the table is empty");
    c[0] = conn_open(&t, -1, 1);
    conn_close(&t, c[0]);
    ok(t.used == 0, "a slot whose descriptor is closed already (-1) is freed");
    conns_free(&t);
}

int
main(void)
{
    test_slots();
    test_expire();
    return done_testing();
}
