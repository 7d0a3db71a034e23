/*
 * openloop.c: an open-loop HTTP load for the bench (tests/bench/run):
 * requests sent at a fixed rate on a schedule set in advance, whatever
 * the answers do, each one's latency counted from the moment it was due.
 *
 *   openloop HOST PORT PATH RATE CONNECTIONS SECONDS WARMUP_SECONDS
 *
 * Sends GET PATH to HOST:PORT (an IPv4 address) over CONNECTIONS kept
 * HTTP/1.1 connections, one request due every 1/RATE seconds, for
 * WARMUP_SECONDS and then SECONDS more.  A request due when every
 * connection is busy waits in a queue here, and its wait counts in its
 * latency: this is what a closed loop (wrk, or h2load --rps, which sends
 * a client's next request only after its answer, and sends all its
 * clients' requests in the same instant) hides, "coordinated omission".
 * Only requests due after the warm-up count.  When the schedule ends,
 * what is still queued or in flight has 2 s to finish; what does not
 * counts as unfinished, with its age then as its latency (a lower bound).
 *
 * Prints two lines, then exits 0:
 *   OPENLOOP {"due":..,"completed":..,"ok":..,"err_status":..,
 *             "err_socket":..,"unfinished":..,"queued_max":..,
 *             "duration_us":..,"max_us":..}
 * (due: requests due in the window; queued_max: the most that waited
 * here for a free connection in it, a sign the load was short of them).
 *   OPENLOOP_HIST b:n,b:n,...   n requests took 1.01^b to 1.01^(b+1) us
 * (the buckets tests/bench/benchlib/spread.py reads).  Exits 2 on bad
 * arguments, 1 when no connection can be made.
 *
 * Answers are read with Content-Length or chunked encoding; a connection
 * closed by the server is counted (err_socket, for a request in flight)
 * and made again.  One thread, epoll and a timerfd: the due times are
 * kept to the microsecond, and the process's own CPU shows as the load's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX 4096
#define BUF_SIZE 65536
#define QUEUE_SIZE (1u << 20) /* requests due and not yet sent */
#define BUCKETS 2400          /* 1.01^2400 us: over 4 hours */
#define GRACE_NS 2000000000LL /* for what is left when the schedule ends */
#define TIMER_KEY UINT64_MAX

enum state { DOWN, CONNECTING, IDLE, BUSY };

struct conn {
    int fd;
    enum state state;
    int64_t due; /* when the request in flight was due (ns) */
    size_t have; /* bytes in buf */
    char buf[BUF_SIZE];
};

/* What one run counts.  Only requests due in the window count. */
struct tally {
    unsigned long due, completed, ok, err_status, err_socket, unfinished;
    unsigned long queued_max;
    int64_t max_ns;
    unsigned long hist[BUCKETS];
};

static struct conn *conns;
static int nconns, epfd;
static struct sockaddr_in addr;
static char request[1024];
static size_t request_len;
static int64_t window_start, window_end;
static struct tally tally;
static double bound[BUCKETS]; /* bound[b] = 1.01^(b+1) */
/* The queue of due times waiting for a connection, and the idle ones. */
static int64_t *queue;
static unsigned qhead, qtail;
static int *idle, nidle;

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* record: a request due at due finished (or was given up) at end. */
static void
record(int64_t due, int64_t end, int ok, int status_err, int socket_err)
{
    double us = (double)(end - due) / 1000.0;
    int lo = 0, hi = BUCKETS - 1, mid;

    if (due < window_start || due >= window_end)
        return;
    tally.completed += ok || status_err;
    tally.ok += ok;
    tally.err_status += status_err;
    tally.err_socket += socket_err;
    if (end - due > tally.max_ns)
        tally.max_ns = end - due;
    /* The first bucket whose upper bound is above us. */
    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (bound[mid] > us)
            hi = mid;
        else
            lo = mid + 1;
    }
    tally.hist[lo]++;
}

static void
watch(struct conn *c, uint32_t events, int op)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = (uint64_t)(c - conns);
    epoll_ctl(epfd, op, c->fd, &ev);
}

/* dial: a new non-blocking connection for c; 0, or -1. */
static int
dial(struct conn *c)
{
    int one = 1;

    c->have = 0;
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0)) == -1)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 &&
        errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->state = CONNECTING;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
    return 0;
}

/* hang_up: c's connection closed; a request in flight on it failed, an
 * idle one leaves the idle list.  A new connection is made. */
static void
hang_up(struct conn *c, int64_t now)
{
    int i;

    if (c->state == BUSY)
        record(c->due, now, 0, 0, 1);
    for (i = 0; c->state == IDLE && i < nidle; i++)
        if (idle[i] == (int)(c - conns)) {
            idle[i] = idle[--nidle];
            break;
        }
    close(c->fd);
    c->fd = -1;
    c->state = DOWN;
    if (dial(c) == -1)
        c->state = DOWN;
}

static void
send_next(int64_t due)
{
    struct conn *c = &conns[idle[--nidle]];

    c->due = due;
    c->state = BUSY;
    c->have = 0;
    /* Small enough to go at once on an idle connection. */
    if (write(c->fd, request, request_len) != (ssize_t)request_len)
        hang_up(c, now_ns());
}

/* dispatch: every queued request that has an idle connection, sent. */
static void
dispatch(void)
{
    while (qhead != qtail && nidle > 0)
        send_next(queue[qhead++ % QUEUE_SIZE]);
}

/* chunked_end: the length of a whole chunked body at p (n bytes), or 0
 * while it is incomplete, -1 when it is malformed. */
static long
chunked_end(const char *p, size_t n)
{
    size_t at = 0;
    unsigned long size;
    char *end;

    for (;;) {
        const char *line = memchr(p + at, '\n', n - at);
        if (line == NULL)
            return 0;
        size = strtoul(p + at, &end, 16);
        if (end == p + at)
            return -1;
        at = (size_t)(line - p) + 1;
        if (size == 0)
            return n - at >= 2 ? (long)(at + 2) : 0; /* the last CRLF */
        if (n - at < size + 2)
            return 0;
        at += size + 2;
    }
}

/* response_end: the length of the whole response in c's buffer, 0 while
 * it is incomplete, -1 when it cannot be read.  *status gets its code. */
static long
response_end(struct conn *c, int *status)
{
    char *head_end, *cl, *te;
    size_t head;
    long body;

    c->buf[c->have] = '\0';
    if ((head_end = strstr(c->buf, "\r\n\r\n")) == NULL)
        return c->have >= BUF_SIZE - 1 ? -1 : 0;
    head = (size_t)(head_end - c->buf) + 4;
    if (strncmp(c->buf, "HTTP/1.", 7) != 0 || c->have < 12)
        return -1;
    *status = atoi(c->buf + 9);
    *head_end = '\0';
    cl = strcasestr(c->buf, "\r\ncontent-length:");
    te = strcasestr(c->buf, "\r\ntransfer-encoding: chunked");
    *head_end = '\r';
    if (cl != NULL) {
        body = atol(cl + 17);
        if (body < 0 || head + (size_t)body >= BUF_SIZE)
            return -1;
        return c->have >= head + (size_t)body ? (long)head + body : 0;
    }
    if (te != NULL) {
        body = chunked_end(c->buf + head, c->have - head);
        return body <= 0 ? body : (long)head + body;
    }
    return -1; /* no length: this load reads only what says its length */
}

static void
on_readable(struct conn *c, int64_t now)
{
    ssize_t n;
    long end;
    int status = 0;

    n = read(c->fd, c->buf + c->have, BUF_SIZE - 1 - c->have);
    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || c->state != BUSY) {
        hang_up(c, now);
        return;
    }
    c->have += (size_t)n;
    if ((end = response_end(c, &status)) == 0)
        return;
    if (end < 0 || (size_t)end != c->have) {
        hang_up(c, now);
        return;
    }
    record(c->due, now, status >= 200 && status < 300, status >= 300, 0);
    c->state = IDLE;
    c->have = 0;
    idle[nidle++] = (int)(c - conns);
}

static void
on_writable(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        close(c->fd);
        c->fd = -1;
        c->state = DOWN;
        dial(c);
        return;
    }
    c->state = IDLE;
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
    idle[nidle++] = (int)(c - conns);
}

static void
arm(int tfd, int64_t at)
{
    struct itimerspec its;

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(at / 1000000000);
    its.it_value.tv_nsec = (long)(at % 1000000000);
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
print_results(void)
{
    int b, first = 1;

    printf("OPENLOOP {\"due\":%lu,\"completed\":%lu,\"ok\":%lu,"
           "\"err_status\":%lu,\"err_socket\":%lu,\"unfinished\":%lu,"
           "\"queued_max\":%lu,\"duration_us\":%lld,\"max_us\":%lld}\n",
           tally.due, tally.completed, tally.ok, tally.err_status,
           tally.err_socket, tally.unfinished, tally.queued_max,
           (long long)((window_end - window_start) / 1000),
           (long long)(tally.max_ns / 1000));
    printf("OPENLOOP_HIST ");
    for (b = 0; b < BUCKETS; b++)
        if (tally.hist[b]) {
            printf("%s%d:%lu", first ? "" : ",", b, tally.hist[b]);
            first = 0;
        }
    printf("\n");
}

/* give_up: at the end of the grace, what is queued or in flight. */
static void
give_up(int64_t now)
{
    int i;

    while (qhead != qtail) {
        int64_t due = queue[qhead++ % QUEUE_SIZE];
        if (due >= window_start && due < window_end)
            tally.unfinished++;
        record(due, now, 0, 0, 0);
    }
    for (i = 0; i < nconns; i++)
        if (conns[i].state == BUSY) {
            if (conns[i].due >= window_start && conns[i].due < window_end)
                tally.unfinished++;
            record(conns[i].due, now, 0, 0, 0);
        }
}

static int
parse_args(int argc, char **argv, double *rate, double *secs, double *warm)
{
    char *end;
    long port;

    if (argc != 8)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    port = strtol(argv[2], &end, 10);
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 || *end != '\0' ||
        port < 1 || port > 65535 || argv[3][0] != '/')
        return -1;
    addr.sin_port = htons((uint16_t)port);
    *rate = strtod(argv[4], &end);
    if (*end != '\0' || !(*rate > 0 && *rate <= 1e7))
        return -1;
    nconns = (int)strtol(argv[5], &end, 10);
    if (*end != '\0' || nconns < 1 || nconns > CONNS_MAX)
        return -1;
    *secs = strtod(argv[6], &end);
    if (*end != '\0' || !(*secs > 0 && *secs <= 3600))
        return -1;
    *warm = strtod(argv[7], &end);
    if (*end != '\0' || !(*warm >= 0 && *warm <= 3600))
        return -1;
    request_len = (size_t)snprintf(request, sizeof(request),
                                   "GET %s HTTP/1.1\r\nHost: %s:%ld\r\n\r\n",
                                   argv[3], argv[1], port);
    return request_len < sizeof(request) ? 0 : -1;
}

int
main(int argc, char **argv)
{
    struct epoll_event evs[256];
    double rate, secs, warm;
    int64_t start, next, gap, now, stop_at;
    int tfd, i, n;
    uint64_t expirations;

    if (parse_args(argc, argv, &rate, &secs, &warm) == -1) {
        fprintf(stderr, "usage: openloop HOST PORT PATH RATE CONNECTIONS "
                        "SECONDS WARMUP_SECONDS\n");
        return 2;
    }
    bound[0] = 1.01;
    for (i = 1; i < BUCKETS; i++)
        bound[i] = bound[i - 1] * 1.01;
    conns = calloc((size_t)nconns, sizeof(*conns));
    queue = calloc(QUEUE_SIZE, sizeof(*queue));
    idle = calloc((size_t)nconns, sizeof(*idle));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (conns == NULL || queue == NULL || idle == NULL || epfd == -1 ||
        tfd == -1) {
        fprintf(stderr, "openloop: out of resources\n");
        return 1;
    }
    for (i = 0; i < nconns; i++)
        if (dial(&conns[i]) == -1) {
            fprintf(stderr, "openloop: connect: %s\n", strerror(errno));
            return 1;
        }
    evs[0].events = EPOLLIN;
    evs[0].data.u64 = TIMER_KEY;
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &evs[0]);

    gap = (int64_t)(1e9 / rate);
    if (gap < 1)
        gap = 1;
    start = next = now_ns() + 50000000; /* the connections made first */
    window_start = start + (int64_t)(warm * 1e9);
    window_end = window_start + (int64_t)(secs * 1e9);
    stop_at = window_end + GRACE_NS;
    arm(tfd, next);
    for (;;) {
        now = now_ns();
        /* Every request due by now joins the queue, then goes out. */
        while (next <= now && next < window_end) {
            if (qtail - qhead == QUEUE_SIZE)
                break; /* this one waits for room: its lateness counts */
            queue[qtail++ % QUEUE_SIZE] = next;
            if (next >= window_start)
                tally.due++;
            next += gap;
        }
        dispatch();
        if (now >= window_start && qtail - qhead > tally.queued_max)
            tally.queued_max = qtail - qhead;
        if (now >= stop_at ||
            (next >= window_end && qhead == qtail && nidle == nconns))
            break;
        arm(tfd, next < window_end ? next : stop_at);
        n = epoll_wait(epfd, evs, 256, 1000);
        now = now_ns();
        for (i = 0; i < n; i++) {
            struct conn *c;
            if (evs[i].data.u64 == TIMER_KEY) {
                while (read(tfd, &expirations, sizeof(expirations)) > 0)
                    ;
                continue;
            }
            c = &conns[evs[i].data.u64];
            if (c->state == CONNECTING)
                on_writable(c);
            else if (c->fd != -1)
                on_readable(c, now);
        }
    }
    give_up(now_ns());
    print_results();
    return 0;
}
