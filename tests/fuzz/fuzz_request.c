/*
 * fuzz_request.c: the whole request path of a worker (app/worker.c), fed
 * from a byte stream of FastCGI records.
 *
 * One worker is set up once, as worker_run sets it up (setup(): the epoll
 * set, the signals, the connection table, the buffers), with a database
 * handle that can never connect: the routes that need no database answer
 * 200, the others 503, all through the same path.  Each input is then one
 * connection, one end of a socketpair given to the worker as accept_one
 * gives it a new connection; the other end is the peer, which writes the
 * input in up to three pieces.  After the first the worker looks at once,
 * as accept_one does; after each other piece it runs what epoll reports,
 * then the connections marked ready, then the deadlines, as a turn of
 * worker_run does, so that the edge-triggered waking is the real one.
 * The clock is the target's: each turn is given its `now`.
 *
 * The input: a flags byte, two 16-bit offsets where the stream is cut,
 * then the stream.  The flags:
 *   bit 0  the peer closes at the end instead of only shutting its
 *          writing side;
 *   bit 1  the peer shuts its reading side first, so that every answer
 *          fails to be written;
 *   bit 2  the peer stops reading after (flags >> 4) * 64 bytes of
 *          answers: what the worker writes then fills the socket (whose
 *          send buffer is made small) and waits on the connection;
 *   bit 3  the stream has no end: after the three pieces the peer sends
 *          the third again (the whole stream if it is empty) at each of
 *          ROUNDS turns, the clock moving STEP_MS a turn, and at each
 *          turn a second connection sends a whole /plaintext request.
 *
 * What must hold, beyond AddressSanitizer's and UndefinedBehaviorSanitizer's
 * own checks and LeakSanitizer's at the end:
 *   - no call into the worker takes more than a second (a peer must never
 *     hold the worker);
 *   - a connection slot in use holds the open descriptor it was given
 *     (nothing else closed it behind the worker's back);
 *   - what the peer reads is whole, well-formed FastCGI records of the
 *     types a responder sends; each answered request is a CGI response
 *     with a status the routes give without a database (200, 404, 405,
 *     503) or 413 (over --request-max), its Content-Length that of the
 *     body (or no body: HEAD);
 *   - the worker never holds a connection past its deadlines: the stream's
 *     connection is closed within --read-timeout + --write-timeout of the
 *     last request it had answered (or of its accept), whatever it sends;
 *     and once the clock passes every deadline, nothing is left open;
 *   - meanwhile the second connection is served in its own turn: its
 *     answer, whole, is there when the turn ends;
 *   - after each input, no connection is left and no socket left open.
 */
#include "../../app/worker.c"

#include <dirent.h>
#include <stdio.h>
#include <sys/un.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEER_CLOSES 1
#define PEER_DEAF 2
#define PEER_STOPS 4
#define PEER_ENDLESS 8
#define HEADER 5
#define ROUNDS 12
#define STEP_MS 1250

static struct worker w;
static struct worker_opts wo;
static struct handler_ctx ctx;
static int sockets; /* the sockets open between inputs */

/* What the peer has read: records, and the answer being gathered. */
static struct {
    unsigned char in[1 << 20];
    size_t len;
    size_t total; /* read in all */
    size_t limit; /* it reads no more than this */
    char out[1 << 16];
    size_t out_len;
} peer;

/* A whole /plaintext request, as the second connection sends it. */
static unsigned char second_req[128];
static size_t second_len;

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_request: %s\n", what);
    abort();
}

/*
 * sockets_open: how many of our descriptors are sockets.  Sockets are
 * what the worker holds (connections, its database's); counting them
 * alone leaves out the pipes the sanitizers' symbolizer may open.
 */
static int
sockets_open(void)
{
    char path[64], link[64];
    struct dirent *e;
    DIR *d = opendir("/proc/self/fd");
    ssize_t k;
    int n = 0;

    if (d == NULL)
        fail("/proc/self/fd");
    while ((e = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        if ((k = readlink(path, link, sizeof(link) - 1)) > 0 &&
            strncmp(link, "socket:", 7) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* record: a record's header and content at p; its length. */
static size_t
record(unsigned char *p, int type, const char *content, size_t n)
{
    memset(p, 0, WIRE_HEADER_LEN);
    p[0] = 1;
    p[1] = (unsigned char)type;
    p[3] = 1;
    p[5] = (unsigned char)n;
    memcpy(p + WIRE_HEADER_LEN, content, n);
    return WIRE_HEADER_LEN + n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    unsigned char *p = second_req;
    int fd;

    (void)argc;
    (void)argv;
    log_init("fuzz_request", LOG_ERR);
    /* A listening socket nobody connects to, at an abstract address the
     * kernel picks (a bind with the family alone): setup() wants one in
     * its epoll set. */
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t)) == -1 ||
        listen(fd, 1) == -1)
        fail("the listening socket");
    wo.listen_fd = fd;
    wo.read_timeout_ms = 5000;
    wo.write_timeout_ms = 5000;
    wo.idle_timeout_ms = 5000;
    wo.max_conns = 4;
    wo.request_max = 8192;
    /* A socket directory that does not exist: connecting fails at once. */
    if ((ctx.db = db_new("host=/nonexistent/fuzz_request", DB_PERSISTENT)) ==
            NULL ||
        (ctx.cache = cache_new(0)) == NULL)
        fail("the handler's context");
    ctx.rng = 1;
    w.ctx = &ctx;
    w.o = &wo;
    if (setup(&w) == -1)
        fail("setup");
    p += record(p, WIRE_BEGIN_REQUEST, "\0\1\0\0\0\0\0\0", 8);
    p += record(p, WIRE_PARAMS,
                "\x0e\x03REQUEST_METHODGET\x0b\x0aREQUEST_URI/plaintext", 42);
    p += record(p, WIRE_PARAMS, "", 0);
    p += record(p, WIRE_STDIN, "", 0);
    second_len = (size_t)(p - second_req);
    sockets = sockets_open();
    return 0;
}

/* check_answer: one request's CGI response, as the peer read it. */
static void
check_answer(const char *s, size_t len)
{
    const char *end = NULL, *cl;
    size_t i, body, want;
    int status;

    for (i = 0; i + 4 <= len; i++)
        if (memcmp(s + i, "\r\n\r\n", 4) == 0) {
            end = s + i;
            break;
        }
    if (len < 12 || memcmp(s, "Status: ", 8) != 0 || end == NULL)
        fail("an answer that is no CGI response");
    status = (s[8] - '0') * 100 + (s[9] - '0') * 10 + (s[10] - '0');
    if (status != 200 && status != 404 && status != 405 && status != 413 &&
        status != 503)
        fail("a status the routes do not give here");
    body = len - (size_t)(end + 4 - s);
    cl = NULL;
    for (i = 0; s + i + 18 <= end; i++)
        if (memcmp(s + i, "\r\nContent-Length: ", 18) == 0) {
            cl = s + i + 18;
            break;
        }
    if (cl == NULL)
        fail("an answer without Content-Length");
    for (want = 0; *cl >= '0' && *cl <= '9'; cl++)
        want = want * 10 + (size_t)(*cl - '0');
    if (body != want && body != 0)
        fail("a body whose length is not its Content-Length");
}

/* check_record: one whole record the peer read. */
static void
check_record(const unsigned char *h, size_t clen)
{
    unsigned id = (unsigned)h[2] << 8 | h[3];

    if (h[0] != 1)
        fail("a record that is not FastCGI version 1");
    switch (h[1]) {
    case 6: /* FCGI_STDOUT */
        if (id == 0 || peer.out_len + clen > sizeof(peer.out))
            fail("FCGI_STDOUT of id 0, or too long");
        memcpy(peer.out + peer.out_len, h + 8, clen);
        peer.out_len += clen;
        break;
    case WIRE_END_REQUEST:
        if (id == 0 || clen != 8)
            fail("a malformed FCGI_END_REQUEST");
        if (peer.out_len > 0)
            check_answer(peer.out, peer.out_len);
        peer.out_len = 0;
        break;
    case WIRE_GET_VALUES_RESULT:
    case WIRE_UNKNOWN_TYPE:
        if (id != 0)
            fail("a management answer with a request id");
        break;
    default:
        fail("a record of a type a responder does not send");
    }
}

/* read_peer: what the worker wrote, up to the peer's limit, checked
 * record by record. */
static void
read_peer(int fd)
{
    size_t off = 0, rec, room;
    ssize_t got;

    if (fd == -1)
        return;
    for (;;) {
        room = sizeof(peer.in) - peer.len;
        if (peer.limit - peer.total < room)
            room = peer.limit - peer.total;
        if (room == 0 ||
            (got = recv(fd, peer.in + peer.len, room, MSG_DONTWAIT)) <= 0)
            break;
        peer.len += (size_t)got;
        peer.total += (size_t)got;
    }
    while (peer.len - off >= WIRE_HEADER_LEN) {
        rec = WIRE_HEADER_LEN +
              ((size_t)peer.in[off + 4] << 8 | peer.in[off + 5]) +
              peer.in[off + 6];
        if (peer.len - off < rec)
            break;
        check_record(peer.in + off, rec - WIRE_HEADER_LEN - peer.in[off + 6]);
        off += rec;
    }
    memmove(peer.in, peer.in + off, peer.len - off);
    peer.len -= off;
}

/* timed: a call into the worker may not take a second. */
static void
timed(int64_t t0)
{
    if (sb_now_ns() - t0 > 1000 * MS)
        fail("the worker was held for more than a second");
}

/* check_slots: every connection slot in use holds an open descriptor. */
static void
check_slots(int fd, int fd2)
{
    int i;

    for (i = 0; i < w.conns.high; i++)
        if (w.conns.c[i].state != CONN_FREE &&
            ((w.conns.c[i].fd != fd && w.conns.c[i].fd != fd2) ||
             fcntl(w.conns.c[i].fd, F_GETFD) == -1))
            fail("a connection slot holds a closed descriptor");
}

/* wake: one turn of worker_run at now, without its wait: what epoll
 * reports, the ready connections, the deadlines.  Results: whether
 * anything happened or is still to do. */
static int
wake(int fd, int64_t now)
{
    struct epoll_event ev[EVENTS];
    int64_t t0 = sb_now_ns();
    int i, n;

    n = epoll_wait(w.ep, ev, EVENTS, 0);
    for (i = 0; i < n; i++) {
        struct conn *c = ev[i].data.ptr;

        if (c != NULL && c->state != CONN_FREE)
            on_event(&w, c, ev[i].events, now);
        check_slots(fd, -1);
    }
    run_ready(&w, now);
    expire(&w, now);
    w.turn++;
    timed(t0);
    check_slots(fd, -1);
    return n > 0 || w.ready;
}

/*
 * second: another connection, sending a whole /plaintext request, taken
 * as accept_one takes one: its answer must be there, whole, at once,
 * and the connection closed (it did not ask to keep it).
 * Results: the requests it added to w.served.
 */
static long
second(int fd, int64_t now)
{
    unsigned char buf[4096];
    long before = w.served;
    size_t len = 0;
    ssize_t got;
    int sv[2], done = 0;
    struct conn *c;
    int64_t t0;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
        send(sv[0], second_req, second_len, 0) != (ssize_t)second_len)
        fail("the second connection");
    if ((c = conn_open(&w.conns, sv[1], now + wo.read_timeout_ms * MS)) == NULL)
        fail("no slot for a second connection");
    t0 = sb_now_ns();
    readable(&w, c, now);
    timed(t0);
    check_slots(fd, sv[1]);
    while ((got = recv(sv[0], buf + len, sizeof(buf) - len, MSG_DONTWAIT)) > 0)
        len += (size_t)got;
    /* Its last record: the FCGI_END_REQUEST of request 1. */
    done = len >= 16 + 8 && memcmp(buf, "\1\6\0\1", 4) == 0 &&
           memcmp(buf + len - 16, "\1\3\0\1\0\10", 6) == 0 &&
           memcmp(buf + 8, "Status: 200 ", 12) == 0;
    if (!done || c->state != CONN_FREE)
        fail("a second connection was not served meanwhile");
    close(sv[0]);
    return w.served - before;
}

/*
 * endless: the stream without end: the third piece again at each turn,
 * the clock moving, a second connection served at each; the stream's
 * connection may live only while requests of its own are answered.
 * Results: the clock at the end.
 */
static int64_t
endless(struct conn *c, int peer_fd, int fd, const uint8_t *again, size_t n,
        int64_t now)
{
    int64_t last = now, bound = (wo.read_timeout_ms + wo.write_timeout_ms) * MS;
    long others = 0, mine = w.served;
    int r;

    for (r = 0; r < ROUNDS; r++) {
        now += STEP_MS * MS;
        if (n > 0)
            send(peer_fd, again, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        others += second(fd, now);
        wake(fd, now);
        read_peer(peer_fd);
        if (w.served - others != mine) {
            mine = w.served - others;
            last = now;
        }
        if (c->state != CONN_FREE && now - last > bound)
            fail("a connection held past its deadlines");
    }
    return now;
}

/* cuts: the three pieces of the stream n bytes long, from the header. */
static void
cuts(const uint8_t *data, size_t n, size_t cut[4])
{
    cut[0] = 0;
    cut[1] = (size_t)(data[1] << 8 | data[2]) % (n + 1);
    cut[2] = (size_t)(data[3] << 8 | data[4]) % (n + 1);
    cut[3] = n;
    if (cut[1] > cut[2]) {
        size_t t = cut[1];

        cut[1] = cut[2];
        cut[2] = t;
    }
}

/* finish: the peer stops sending; the worker runs what that wakes. */
static void
finish(int *peer_fd, int fd, int flags, int64_t now)
{
    int turns = 0;

    if (flags & PEER_CLOSES) {
        close(*peer_fd);
        *peer_fd = -1;
    } else {
        shutdown(*peer_fd, SHUT_WR);
    }
    while (wake(fd, now)) {
        read_peer(*peer_fd);
        /* Its bytes are finite: the turns must end. */
        if (++turns > 10000)
            fail("the worker keeps waking on a connection that sends nothing");
    }
    read_peer(*peer_fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *s = data + HEADER;
    int64_t now = sb_now_ns(), t0;
    int sv[2], i, peer_fd, flags, small = 4096;
    size_t n, cut[4];
    struct conn *c;

    if (size < HEADER)
        return 0;
    n = size - HEADER;
    flags = data[0];
    cuts(data, n, cut);
    peer.len = peer.out_len = peer.total = 0;
    peer.limit = flags & PEER_STOPS ? (size_t)(flags >> 4) * 64 : SIZE_MAX;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
        fail("socketpair");
    peer_fd = sv[0];
    if (flags & (PEER_STOPS | PEER_ENDLESS))
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    if (flags & PEER_DEAF)
        shutdown(peer_fd, SHUT_RD);
    c = conn_open(&w.conns, sv[1], now + wo.read_timeout_ms * MS);
    if (c == NULL)
        fail("no free connection slot: one was left behind");
    for (i = 0; i < 3; i++) {
        /* The input is at most -max_len bytes, far below what a socket
         * holds unread: the write never waits.  Its result does not
         * matter: the worker may have closed its end already. */
        if (cut[i + 1] > cut[i])
            send(peer_fd, s + cut[i], cut[i + 1] - cut[i], MSG_NOSIGNAL);
        if (i == 0) {
            t0 = sb_now_ns();
            readable(&w, c, now);
            timed(t0);
            check_slots(sv[1], -1);
        } else {
            wake(sv[1], now);
        }
        read_peer(peer_fd);
    }
    if (flags & PEER_ENDLESS)
        now = cut[3] > cut[2]
                  ? endless(c, peer_fd, sv[1], s + cut[2], cut[3] - cut[2], now)
                  : endless(c, peer_fd, sv[1], s, n, now);
    finish(&peer_fd, sv[1], flags, now);
    if (peer_fd != -1 && !(flags & (PEER_DEAF | PEER_STOPS)) && peer.len != 0)
        fail("the peer read part of a record");
    /* Past every deadline, nothing may be left. */
    expire(&w,
           now +
               (wo.read_timeout_ms + wo.write_timeout_ms + wo.idle_timeout_ms) *
                   MS +
               1);
    if (c->state != CONN_FREE)
        fail("a connection outlives its deadlines");
    if (peer_fd != -1)
        close(peer_fd);
    if (w.conns.used != 0)
        fail("a connection left in the table");
    if (sockets_open() != sockets)
        fail("a socket left open");
    return 0;
}
