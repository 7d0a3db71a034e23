/*
 * test_conn.c: a worker's table of connections (app/conn.c): slots taken
 * and given back, a full table, the earliest deadline, expiry by state
 * that closes the descriptors it frees and no others, the kept list in
 * its order; then a connection's bytes, on a socketpair: what is received
 * held until used, its buffer grown to a cap and no further, and what is
 * sent written now or queued, in order, whatever the peer reads.
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
           a->read_start_ns == 0 && !a->polled && a->read_deadline_ns == 300 &&
           conn_held(a) == 0 && conn_queued(a) == 0,
       "a new connection is reading until its read deadline, nothing else");
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
    conn_set(&t, c[1], CONN_KEPT, 200);
    conn_set(&t, c[3], CONN_KEPT, 400);
    is_int(conns_count(&t, CONN_READING), 2, "2 reading");
    is_int(conns_count(&t, CONN_KEPT), 2, "2 kept");
    is_int(conns_expire(&t, CONN_KEPT, 150), 0, "no kept one due at 150");
    is_int(conns_expire(&t, CONN_READING, 300), 2,
           "reading ones due at 300: 2 (100 and 300)");
    ok(!is_open(fd[0]) && !is_open(fd[2]) && is_open(fd[1]) && is_open(fd[3]),
       "their descriptors closed, the kept ones' not");
    is_int(conns_expire(&t, CONN_FREE, 400), 2, "any state due at 400: 2");
    ok(t.used == 0 && t.high == 0 && !is_open(fd[1]) && !is_open(fd[3]) &&
           t.kept == 0 && conns_lru(&t) == NULL,
       "the table is empty, the kept list too");
    c[0] = conn_open(&t, -1, 1);
    conn_close(&t, c[0]);
    ok(t.used == 0, "a slot whose descriptor is closed already (-1) is freed");
    conns_free(&t);
}

/*
 * test_lru: the kept list is in the order connections were kept; a
 * connection that reads again leaves it, and joins its end when kept
 * again; a closed one leaves it.
 */
static void
test_lru(void)
{
    struct conns t;
    struct conn *c[4];
    int i;

    conns_init(&t, 4);
    for (i = 0; i < 4; i++)
        c[i] = conn_open(&t, open_fd(), 10);
    ok(conns_lru(&t) == NULL, "nothing kept: no least recently used");
    conn_set(&t, c[2], CONN_KEPT, 100);
    conn_set(&t, c[0], CONN_KEPT, 100);
    conn_set(&t, c[3], CONN_KEPT, 100);
    ok(conns_lru(&t) == c[2] && t.kept == 3,
       "kept in the order 2, 0, 3: 2 is the least recently used");
    conn_set(&t, c[2], CONN_READING, 50);
    ok(conns_lru(&t) == c[0] && t.kept == 2, "2 reads again: then 0");
    conn_set(&t, c[2], CONN_WRITING, 50);
    conn_set(&t, c[2], CONN_KEPT, 200);
    conn_close(&t, c[0]);
    ok(conns_lru(&t) == c[3] && t.kept == 2,
       "0 closed: 3, kept before 2 came back");
    conn_close(&t, c[3]);
    ok(conns_lru(&t) == c[2] && t.kept == 1, "3 closed: 2");
    conn_set(&t, c[2], CONN_READING, 50);
    ok(conns_lru(&t) == NULL && t.kept == 0 && t.oldest == NULL &&
           t.newest == NULL,
       "and none once 2 reads");
    is_int(conns_count(&t, CONN_READING), 2, "two reading");
    conns_free(&t);
}

/* pair: a non-blocking socketpair; sv[1] is the connection's end. */
static int
pair(int sv[2], int sndbuf)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
        return -1;
    if (sndbuf > 0)
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    return 0;
}

static void
test_recv(void)
{
    static char big[10000];
    struct conns t;
    struct conn *c;
    int sv[2];

    conns_init(&t, 1);
    if (pair(sv, 0) == -1) {
        ok(0, "socketpair: %s", strerror(errno));
        return;
    }
    c = conn_open(&t, sv[1], 10);
    is_int(conn_recv(c, 100, 6000), 0, "nothing sent: 0 (EAGAIN)");
    ok(write(sv[0], "0123456789", 10) == 10, "10 bytes sent");
    is_int(conn_recv(c, 4, 6000), 4, "at most max: 4 of 10");
    ok(conn_held(c) == 4 && memcmp(c->in + c->in_off, "0123", 4) == 0,
       "held: the first 4");
    conn_consume(c, 3);
    is_int(conn_recv(c, 100, 6000), 6, "then the other 6");
    ok(conn_held(c) == 7 && memcmp(c->in + c->in_off, "3456789", 7) == 0,
       "held: what was not used, then what came");
    conn_consume(c, 7);
    memset(big, 'b', sizeof(big));
    ok(write(sv[0], big, sizeof(big)) == (ssize_t)sizeof(big), "10000 more");
    is_int(conn_recv(c, sizeof(big), 6000), 4096,
           "a first buffer of 4096 bytes");
    is_int(conn_recv(c, sizeof(big), 6000), 6000 - 4096,
           "grown, but to the cap (6000) only");
    ok(conn_recv(c, sizeof(big), 6000) == -1 && errno == ENOBUFS,
       "full at the cap: -1, ENOBUFS");
    conn_consume(c, 6000);
    conn_set(&t, c, CONN_KEPT, 100);
    ok(c->in == NULL && c->in_cap == 0,
       "kept with nothing held: the grown buffer is freed");
    is_int(conn_recv(c, sizeof(big), 6000), 4000,
           "the rest, into a new first buffer");
    close(sv[0]);
    conn_consume(c, conn_held(c));
    ok(conn_recv(c, 100, 6000) == -1 && errno == 0,
       "the peer closed: -1, errno 0");
    conns_free(&t);
}

/* drain_peer: read what fd has now into p (at most cap); how much. */
static size_t
drain_peer(int fd, char *p, size_t cap)
{
    size_t n = 0;
    ssize_t got;

    while (n < cap && (got = read(fd, p + n, cap - n)) > 0)
        n += (size_t)got;
    return n;
}

static void
test_send(void)
{
    static char a[300000], b[1000], back[sizeof(a) + sizeof(b) + 10];
    struct iovec iov[3];
    struct conns t;
    struct conn *c;
    size_t n = 0, i;
    int sv[2], r = 0, bad = 0;

    conns_init(&t, 1);
    if (pair(sv, 4096) == -1) {
        ok(0, "socketpair: %s", strerror(errno));
        return;
    }
    c = conn_open(&t, sv[1], 10);
    for (i = 0; i < sizeof(a); i++)
        a[i] = (char)('a' + i % 26);
    memset(b, 'B', sizeof(b));
    iov[0] = (struct iovec){(char *)"<", 1};
    iov[1] = (struct iovec){a, sizeof(a)};
    iov[2] = (struct iovec){(char *)">", 1};
    ok(conn_send(c, iov, 3) == 0 && conn_queued(c) > 0 &&
           conn_queued(c) < sizeof(a) + 2,
       "more than the socket takes: part written now, the rest queued");
    iov[0] = (struct iovec){b, sizeof(b)};
    ok(conn_send(c, iov, 1) == 0 &&
           conn_queued(c) > sizeof(b) /* all of b, behind the rest */,
       "a second send while some is queued: queued behind it, not written");
    for (i = 0; i < 1000 && r != 1; i++) {
        n += drain_peer(sv[0], back + n, sizeof(back) - n);
        if ((r = conn_flush(c)) == -1)
            break;
    }
    n += drain_peer(sv[0], back + n, sizeof(back) - n);
    bad = n != sizeof(a) + 2 + sizeof(b) || back[0] != '<' ||
          memcmp(back + 1, a, sizeof(a)) != 0 || back[sizeof(a) + 1] != '>' ||
          memcmp(back + sizeof(a) + 2, b, sizeof(b)) != 0;
    ok(r == 1 && !bad,
       "flushed as the peer reads: every byte arrives once, in order "
       "(%zu bytes)",
       n);
    ok(conn_queued(c) == 0 && c->out == NULL,
       "then nothing is queued, and no buffer is held");
    close(sv[0]);
    iov[0] = (struct iovec){a, sizeof(a)};
    ok(conn_send(c, iov, 1) == -1, "the peer gone: conn_send fails");
    conns_free(&t);
}

int
main(void)
{
    test_slots();
    test_expire();
    test_lru();
    test_recv();
    test_send();
    return done_testing();
}
