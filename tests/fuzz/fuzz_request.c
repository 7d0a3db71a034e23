/*
 * fuzz_request.c: the whole request path of a worker (app/worker.c), fed
 * from a byte stream of FastCGI records.
 *
 * One worker is set up once, as worker_run sets it up (setup(): the epoll
 * set, the signals, the connection table, libfcgi's request), with a
 * database handle that can never connect: the routes that need no
 * database answer 200, the others 503, all through the same path.  Each
 * input is then one connection, one end of a socketpair given to the
 * worker as accept_one gives it a new connection; the other end is the
 * peer, which writes the input in up to three pieces.  After the first
 * the worker looks at once, as accept_one does; after each other piece
 * it runs what epoll_pwait reports, as worker_run does, so that the
 * edge-triggered waking is the real one.  Then the peer stops writing
 * (or closes, or had stopped reading from the start), the worker runs
 * what that wakes, and a connection still open is closed, as its
 * deadline would.
 *
 * The input: a flags byte (bit 0: the peer closes instead of only
 * shutting its writing side; bit 1: the peer shuts its reading side
 * first, so that every answer fails to be written), two 16-bit offsets
 * where the stream is cut, then the stream.
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
 *     503), its Content-Length that of the body (or no body: HEAD);
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
#define HEADER 5

static struct worker w;
static struct worker_opts wo;
static struct handler_ctx ctx;
static int sockets; /* the sockets open between inputs */

/* What the peer has read: records, and the answer being gathered. */
static struct {
    unsigned char in[1 << 20];
    size_t len;
    char out[1 << 16];
    size_t out_len;
} peer;

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

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
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
    w.req.ipcFd = -1;
    if (setup(&w) == -1)
        fail("setup");
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
    if (status != 200 && status != 404 && status != 405 && status != 503)
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

/* read_peer: what the worker wrote, checked record by record. */
static void
read_peer(int fd)
{
    ssize_t got;
    size_t off = 0, clen, rec;
    unsigned char *h;
    unsigned id;

    if (fd == -1)
        return;
    while ((got = recv(fd, peer.in + peer.len, sizeof(peer.in) - peer.len,
                       MSG_DONTWAIT)) > 0)
        peer.len += (size_t)got;
    for (;;) {
        if (peer.len - off < WIRE_HEADER_LEN)
            break;
        h = peer.in + off;
        clen = (size_t)h[4] << 8 | h[5];
        rec = WIRE_HEADER_LEN + clen + h[6];
        if (peer.len - off < rec)
            break;
        id = (unsigned)h[2] << 8 | h[3];
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
        off += rec;
    }
    memmove(peer.in, peer.in + off, peer.len - off);
    peer.len -= off;
}

/* run: one call into the worker; it may not take a second. */
static void
run(struct conn *c)
{
    int64_t t0 = sb_now_ns(), t;

    readable(&w, c, t0);
    t = sb_now_ns();
    if (t - t0 > 1000 * MS)
        fail("the worker was held for more than a second");
}

/* check_slots: every connection slot in use holds an open descriptor. */
static void
check_slots(int fd)
{
    int i;

    for (i = 0; i < w.conns.high; i++)
        if (w.conns.c[i].state != CONN_FREE &&
            (w.conns.c[i].fd != fd || fcntl(fd, F_GETFD) == -1))
            fail("a connection slot holds a closed descriptor");
}

/* wake: what epoll reports, run as worker_run runs it. */
static int
wake(int fd)
{
    struct epoll_event ev[EVENTS];
    int i, n;

    n = epoll_wait(w.ep, ev, EVENTS, 0);
    for (i = 0; i < n; i++) {
        struct conn *c = ev[i].data.ptr;

        if (c != NULL && c->state != CONN_FREE)
            run(c);
        check_slots(fd);
    }
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *s = data + HEADER;
    size_t n, cut[4];
    struct conn *c;
    int sv[2], i, peer_fd;

    if (size < HEADER)
        return 0;
    n = size - HEADER;
    cut[0] = 0;
    cut[1] = (size_t)(data[1] << 8 | data[2]) % (n + 1);
    cut[2] = (size_t)(data[3] << 8 | data[4]) % (n + 1);
    cut[3] = n;
    if (cut[1] > cut[2]) {
        size_t t = cut[1];

        cut[1] = cut[2];
        cut[2] = t;
    }
    peer.len = peer.out_len = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
        fail("socketpair");
    peer_fd = sv[0];
    if (data[0] & PEER_DEAF)
        shutdown(peer_fd, SHUT_RD);
    c = conn_open(&w.conns, sv[1], sb_now_ns() + wo.read_timeout_ms * MS);
    if (c == NULL)
        fail("no free connection slot: one was left behind");
    for (i = 0; i < 3; i++) {
        /* The input is at most -max_len bytes, far below what a socket
         * holds unread: the write never waits.  Its result does not
         * matter: the worker may have closed its end already. */
        if (cut[i + 1] > cut[i])
            send(peer_fd, s + cut[i], cut[i + 1] - cut[i], MSG_NOSIGNAL);
        if (i == 0) {
            run(c);
            check_slots(sv[1]);
        } else {
            wake(sv[1]);
        }
        read_peer(peer_fd);
    }
    if (data[0] & PEER_CLOSES) {
        close(peer_fd);
        peer_fd = -1;
    } else {
        shutdown(peer_fd, SHUT_WR);
    }
    while (wake(sv[1]) > 0)
        read_peer(peer_fd);
    read_peer(peer_fd);
    if (peer_fd != -1 && !(data[0] & PEER_DEAF) && peer.len != 0)
        fail("the peer read part of a record");
    /* What is left open would meet its deadline. */
    if (c->state != CONN_FREE)
        conn_close(&w.conns, c);
    if (peer_fd != -1)
        close(peer_fd);
    if (w.conns.used != 0)
        fail("a connection left in the table");
    if (sockets_open() != sockets)
        fail("a socket left open");
    return 0;
}
