/*
 * status.c: the pool's status page; see status.h.
 *
 * Read top to bottom: the FastCGI loop that serves the page (records
 * judged by wire.c, as the workers' are; what the page says is page.c's),
 * and the command's client.
 *
 * The waits, each with its bound, what happens when it passes, and the
 * test that holds it (tests/spawn/supervisor/test_status.c unless named;
 * test_status_clients.py is in tests/integration/): the status process's
 * rows of the table of waits, whose other parts are in supervisor.h (the
 * supervisor), app/worker.h (a worker) and app/db.h (the database).
 *
 *   wait                       bound                   when it passes
 *   -------------------------  ----------------------  ---------------------
 *   poll(), the loop's sleep   the nearest deadline    the client is closed;
 *                              below, 100 ms at most   the listen queue is
 *                                                      sampled every 100 ms
 *     test: the rows below; test_status_clients.py "one client holds a
 *     connection, silent: a second client gets the page in under 100 ms"
 *   accept()                   none: non-blocking      -
 *     no test of its own: non-blocking by construction; every client of
 *     the tests is accepted by it
 *   accept() failing (EMFILE)  the listening socket    tried again
 *                              rests 100 ms
 *     no test: it takes the process's descriptors exhausted
 *   a connection's places      16 at once              the longest idle one
 *                                                      (else the oldest) is
 *                                                      closed for a new one
 *     test: "all places taken: a new client is answered", "in the place of
 *     the idle connection, not of those reading"
 *   a request to begin         2 s from the accept or  closed
 *                              the last answer; none
 *                              after 10 s of life
 *     test: "a connection that says nothing: closed at the idle deadline",
 *     "a kept connection asking every 100 ms: closed once ... old";
 *     test_status_clients.py "one client asks in a loop on a kept
 *     connection: a second client gets the page in under 100 ms"
 *   the rest of a request      2 s from its first      closed, unanswered
 *                              byte, never renewed
 *     test: "a request a byte every 100 ms: closed at the read deadline
 *     from its first byte", "half a request: closed, without an answer";
 *     test_status_clients.py "one client sends half a request: ..."
 *   an answer to be taken      2 s from when it was    closed
 *                              queued (non-blocking)
 *     test: "a client that never reads: closed at the write deadline";
 *     test_status_clients.py "one client asks for 500 pages and never
 *     reads: ..."
 *   netlink, /proc reads       none: the kernel        -
 *                              answers at once
 *     no test: nothing there to wait for (the kernel answers within the
 *     system call)
 *   tfb-spawn status: connect  5 s (SO_SNDTIMEO)       exit 1, "status
 *   and its request                                    socket PATH: ..."
 *     test: "no status process: an error naming the socket"
 *   tfb-spawn status: the      5 s from its start, in  exit 1, "no answer
 *   whole answer               all; 16 MB at most      within 5000 ms"
 *     test: "a status socket that never answers: given up in ... ms" (the
 *     bound set to 300 ms)
 */
#define _GNU_SOURCE
#include "status.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "log.h"
#include "page.h"
#include "scoreboard.h"
#include "wire.h"

/* A status request: a few hundred bytes of parameters. */
#define REQUEST_MAX 16384

/* --- serving ----------------------------------------------------------- */

/*
 * The status process serves every client at once from one poll() loop,
 * each within a budget of its own, so that no client holds the page from
 * another: a connection that says nothing, sends half a request, asks in
 * a loop or never reads its answers costs the others nothing but its
 * place, and loses it at its own deadline.  A connection is in one of
 * three states, each with a deadline counted from the state's start,
 * which nothing within the state renews:
 *
 *   waiting    no request under way: idle_ms from the accept or from
 *              the last answer, and none past lifetime_ms of its life;
 *   reading    part of a request read: read_ms from its first byte;
 *   writing    an answer queued: write_ms for the peer to take it all.
 *
 * While an answer waits to be written the connection is not read, so a
 * client holds one answer and one request's bytes, at most.  When every
 * place is taken, a new connection takes the place of the one waiting
 * longest, else of the one whose deadline began first.
 */
struct status_budget {
    int clients;     /* connections at once (at most CLIENTS_MAX) */
    int idle_ms;     /* waiting: for a request to begin */
    int read_ms;     /* reading: for the request to arrive whole */
    int write_ms;    /* writing: for the answer to be taken */
    int lifetime_ms; /* a kept connection begins no request after this */
};

#define CLIENTS_MAX 16
/* Records served per client per wake-up: a stream of FCGI_GET_VALUES
 * must not keep the loop from the others. */
#define UNITS_PER_WAKE 16
#define MS 1000000LL /* nanoseconds */

/* Not const: the unit tests shorten it. */
static struct status_budget budget = {CLIENTS_MAX, 2000, 2000, 2000, 10000};

struct client {
    int fd;             /* -1: a free place */
    int eof;            /* the peer will send nothing more */
    int closing;        /* close once the answer is written */
    int more;           /* whole records may wait in in[]: come back */
    int64_t born_ns;    /* accepted */
    int64_t idle_ns;    /* waiting since */
    int64_t req_ns;     /* reading since (the first byte in in[]) */
    int64_t out_ns;     /* writing since */
    unsigned char *out; /* the answer, malloc'd */
    size_t out_len, out_off, in_len;
    unsigned char in[REQUEST_MAX + 1];
};

/* param: the value of name among the pairs, copied into out; "" if none. */
static void
param(const unsigned char *pairs, size_t len, const char *name, char *out,
      size_t cap)
{
    const unsigned char *n, *v;
    size_t off = 0, nl, vl, want = strlen(name);

    out[0] = '\0';
    while (wire_pair(pairs, len, &off, &n, &nl, &v, &vl))
        if (nl == want && memcmp(n, name, nl) == 0) {
            snprintf(out, cap, "%.*s", (int)(vl < cap ? vl : cap - 1), v);
            return;
        }
}

/* The reason phrases of the statuses the page answers with. */
static const char *
reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    default:
        return "Service Unavailable";
    }
}

/*
 * frame: the CGI response to request id as FastCGI records: the headers
 * and the body in FCGI_STDOUT records, the empty one, FCGI_END_REQUEST.
 * The HTML page gets a Content-Security-Policy that lets it run its own
 * script (?js, same origin) and no other: an escape missed could plant
 * no script.  Results: the records, malloc'd (*len bytes), or NULL.
 */
static unsigned char *
frame(unsigned id, int code, const char *type, const char *body, size_t blen,
      size_t *len)
{
    char head[512];
    size_t hlen, off, chunk, n;
    unsigned char *out, *p;

    hlen = (size_t)snprintf(
        head, sizeof(head),
        "Status: %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n%s\r\n",
        code, reason(code), type,
        strncmp(type, "text/html", 9) == 0
            ? "Content-Security-Policy: default-src 'none'; script-src "
              "'self'; connect-src 'self'; style-src 'unsafe-inline'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors "
              "'none'\r\n"
            : "");
    assert(hlen < sizeof(head));
    n = 3 * WIRE_HEADER_LEN + hlen + (blen / 65535 + 1) * WIRE_HEADER_LEN +
        blen + WIRE_END_REQUEST_LEN;
    if ((out = malloc(n)) == NULL)
        return NULL;
    p = out;
    wire_stdout(p, id, hlen);
    memcpy(p + WIRE_HEADER_LEN, head, hlen);
    p += WIRE_HEADER_LEN + hlen;
    for (off = 0; off < blen; off += chunk) {
        chunk = blen - off > 65535 ? 65535 : blen - off;
        wire_stdout(p, id, chunk);
        memcpy(p + WIRE_HEADER_LEN, body + off, chunk);
        p += WIRE_HEADER_LEN + chunk;
    }
    wire_stdout(p, id, 0);
    p += WIRE_HEADER_LEN;
    p += wire_end_request(p, id, 0, WIRE_REQUEST_COMPLETE);
    *len = (size_t)(p - out);
    assert(*len <= n);
    return out;
}

static int
writing(const struct client *c)
{
    return c->out_off < c->out_len;
}

/* deadline: when the connection is closed unless it moves on first. */
static int64_t
deadline(const struct client *c)
{
    int64_t idle, life;

    if (writing(c))
        return c->out_ns + budget.write_ms * MS;
    if (c->in_len > 0)
        return c->req_ns + budget.read_ms * MS;
    idle = c->idle_ns + budget.idle_ms * MS;
    life = c->born_ns + budget.lifetime_ms * MS;
    return idle < life ? idle : life;
}

static void
client_close(struct client *c)
{
    close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
}

/* queue: the answer out (malloc'd, taken over) is to be written. */
static void
queue(struct client *c, unsigned char *out, size_t len, int64_t now)
{
    assert(!writing(c));
    free(c->out);
    c->out = out;
    c->out_len = len;
    c->out_off = 0;
    c->out_ns = now;
}

/* consume: the first n bytes of in[] are dealt with.  The rest, if any,
 * keeps the read deadline its first byte began. */
static void
consume(struct client *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/*
 * answer_page: the page a whole request (judged v) asks for, queued.
 * Results: 0, or -1 (its parameters do not fit, or out of memory).
 */
static int
answer_page(struct client *c, const struct status_info *info,
            const struct wire_result *v, int64_t now)
{
    static unsigned char pairs[REQUEST_MAX];
    char query[512], accept[256], uri[512], *page;
    enum status_format fmt;
    unsigned char *out;
    const char *type;
    size_t len, olen, path;
    long plen;
    int full, code;

    plen = wire_gather(c->in, v->len, WIRE_PARAMS, v->id, pairs, sizeof(pairs));
    if (plen < 0)
        return -1;
    param(pairs, (size_t)plen, "QUERY_STRING", query, sizeof(query));
    param(pairs, (size_t)plen, "HTTP_ACCEPT", accept, sizeof(accept));
    param(pairs, (size_t)plen, "REQUEST_URI", uri, sizeof(uri));
    fmt = status_format_of(query, accept, &full);
    /* php-fpm's ping.path: the front server routes /ping here too. */
    path = strcspn(uri, "?");
    if (path >= 5 && strncmp(uri + path - 5, "/ping", 5) == 0)
        fmt = STATUS_PING;
    if ((code = status_render(info, fmt, full, &page, &len, &type)) == -1)
        return -1;
    out = frame(v->id, code, type, page, len, &olen);
    free(page);
    if (out == NULL)
        return -1;
    queue(c, out, olen, now);
    /* A kept connection past its lifetime gets this answer, then ends. */
    if (!v->keep || now - c->born_ns >= budget.lifetime_ms * MS)
        c->closing = 1;
    return 0;
}

/*
 * serve_one: the first unit in[] holds, as wire.c judges it: a request
 * is answered with the page, a management record with its answer; a lie,
 * another role or an abort ends the connection, as before.
 * Results: 1 (one dealt with), 0 (not whole yet), -1 (close it).
 */
static int
serve_one(struct client *c, const struct status_info *info, int64_t now)
{
    static const struct wire_limits lim = {REQUEST_MAX};
    static const struct wire_values values = {1, 1};
    unsigned char *out;
    struct wire_result v;

    wire_judge(c->in, c->in_len, 0, &lim, &v);
    switch (v.verdict) {
    case WIRE_MORE:
        /* A request over REQUEST_MAX is WIRE_BAD before in[] is full. */
        return c->in_len < sizeof(c->in) ? 0 : -1;
    case WIRE_MANAGEMENT:
        if ((out = malloc(WIRE_VALUES_MAX)) == NULL)
            return -1;
        queue(c, out, wire_answer(out, c->in, &v, &values), now);
        break;
    case WIRE_REQUEST:
        if (answer_page(c, info, &v, now) == -1)
            return -1;
        break;
    default:
        return -1;
    }
    consume(c, v.len);
    return 1;
}

/* flush: as much of the answer as the socket takes now.  Results: 0, or
 * -1 when the peer is gone. */
static int
flush(struct client *c, int64_t now)
{
    ssize_t n;

    while (writing(c)) {
        n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->out_off += (size_t)n;
    }
    if (c->out != NULL) {
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_off = 0;
        c->idle_ns = now;
    }
    return 0;
}

/* take: what the socket holds, as far as in[] has room.  Results: 0, or
 * -1 on an error. */
static int
take(struct client *c, int64_t now)
{
    ssize_t n;

    do
        n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
                 MSG_DONTWAIT);
    while (n == -1 && errno == EINTR);
    if (n == -1)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    if (n == 0) {
        c->eof = 1;
        return 0;
    }
    if (c->in_len == 0)
        c->req_ns = now;
    c->in_len += (size_t)n;
    return 0;
}

/*
 * step: a client's turn: read what came, then write what is queued and
 * serve what is whole, in turn, up to UNITS_PER_WAKE records.
 * Results: 0, or -1 when the connection is to be closed.
 */
static int
step(struct client *c, short revents, const struct status_info *info,
     int64_t now)
{
    int n, r;

    if (revents & (POLLERR | POLLNVAL))
        return -1;
    if ((revents & (POLLIN | POLLHUP)) && !writing(c) && !c->eof &&
        take(c, now) == -1)
        return -1;
    c->more = 0;
    for (n = 0;; n++) {
        if (flush(c, now) == -1)
            return -1;
        if (writing(c))
            return 0;
        if (c->closing)
            return -1;
        if (n == UNITS_PER_WAKE) {
            c->more = c->in_len > 0;
            return 0;
        }
        if ((r = serve_one(c, info, now)) != 1)
            return r == 0 && c->eof ? -1 : r;
    }
}

/*
 * place: a free place for a new connection, or the place of the one that
 * has waited longest for a request, or else of the one whose deadline
 * began first, closed for it.
 */
static struct client *
place(struct client *cl)
{
    struct client *old = NULL;
    int64_t since, oldest = INT64_MAX;
    int i, idle, old_idle = 0;

    for (i = 0; i < budget.clients; i++) {
        if (cl[i].fd == -1)
            return &cl[i];
        idle = !writing(&cl[i]) && cl[i].in_len == 0;
        since = writing(&cl[i])    ? cl[i].out_ns
                : cl[i].in_len > 0 ? cl[i].req_ns
                                   : cl[i].idle_ns;
        if ((idle && !old_idle) || (idle == old_idle && since < oldest)) {
            old = &cl[i];
            old_idle = idle;
            oldest = since;
        }
    }
    log_debug("status: %d connections: closing the %s one for a new one",
              budget.clients, old_idle ? "longest idle" : "oldest");
    client_close(old);
    return old;
}

/*
 * admit: the connections waiting on the listening socket, a few per
 * wake-up.  Results: when to look again at the listening socket (now, or
 * later when accept() fails for want of a resource, which it would again
 * at once).
 */
static int64_t
admit(int lfd, struct client *cl, int64_t now)
{
    struct client *c;
    int fd, n;

    for (n = 0; n < 8; n++) {
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd == -1)
            return errno == EAGAIN || errno == EWOULDBLOCK
                       ? now
                       : now + PAGE_SAMPLE_MS * MS;
        c = place(cl);
        memset(c, 0, offsetof(struct client, in));
        c->fd = fd;
        c->born_ns = c->idle_ns = now;
    }
    return now;
}

/*
 * watch: the poll set: the listening socket (unless resting), then each
 * client, for reading or for writing; a client past its deadline is
 * closed instead.  Results: the number of entries; *wait the time to
 * the nearest deadline, 0 when a client has whole records waiting.
 */
static int
watch(int lfd, struct client *cl, struct pollfd *pf, int *who, int64_t now,
      int64_t *wait)
{
    int i, n = 0;
    int64_t d;

    pf[n].fd = lfd;
    pf[n++].events = POLLIN;
    for (i = 0; i < budget.clients; i++) {
        struct client *c = &cl[i];

        if (c->fd == -1)
            continue;
        if ((d = deadline(c)) <= now) {
            log_debug("status: closing a connection past its %s deadline",
                      writing(c)      ? "write"
                      : c->in_len > 0 ? "read"
                                      : "idle");
            client_close(c);
            continue;
        }
        *wait = d - now < *wait ? d - now : *wait;
        if (c->more)
            *wait = 0;
        pf[n].fd = c->fd;
        pf[n].events = writing(c) ? POLLOUT : c->eof ? 0 : POLLIN;
        who[n++] = i;
    }
    return n;
}

void
status_serve(int fd, const struct status_info *info)
{
    static struct client cl[CLIENTS_MAX];
    struct pollfd pf[CLIENTS_MAX + 1];
    int who[CLIENTS_MAX + 1], i, n, fl;
    int64_t now = sb_now_ns(), sample = now, resume = now, wait;

    assert(budget.clients >= 1 && budget.clients <= CLIENTS_MAX);
    for (i = 0; i < CLIENTS_MAX; i++)
        cl[i].fd = -1;
    /* Ours alone: the supervisor never accepts on it. */
    if ((fl = fcntl(fd, F_GETFL)) != -1)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        /* The listen queue is sampled for its maximum, busy or not,
         * and the counters for the rates. */
        if (now >= sample) {
            page_sample(info, now);
            sample = now + PAGE_SAMPLE_MS * MS;
        }
        wait = sample - now;
        n = watch(fd, cl, pf, who, now, &wait);
        if (now < resume) {
            pf[0].events = 0;
            wait = resume - now < wait ? resume - now : wait;
        }
        if (poll(pf, (nfds_t)n, (int)((wait + MS - 1) / MS)) == -1) {
            if (errno != EINTR)
                usleep(10000); /* ENOMEM: nothing to do but wait */
            now = sb_now_ns();
            continue;
        }
        now = sb_now_ns();
        for (i = 1; i < n; i++) {
            struct client *c = &cl[who[i]];

            if ((pf[i].revents != 0 || c->more) &&
                step(c, pf[i].revents, info, now) == -1)
                client_close(c);
        }
        if (pf[0].revents & POLLIN)
            resume = admit(fd, cl, now);
    }
}

/* --- the command's client ---------------------------------------------- */

/* How long the command waits for the whole page, its connect included,
 * and the most it takes.  Not const: the unit tests shorten the wait. */
static int fetch_ms = 5000;
#define FETCH_MAX (16u << 20)

/* recv_by: n bytes into p before deadline.  Results: 0, -1 when the
 * connection ends or fails first, -2 when the deadline passes first. */
static int
recv_by(int fd, void *p, size_t n, int64_t deadline)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    unsigned char *c = p;
    int64_t left;
    ssize_t r;

    while (n > 0) {
        if ((left = deadline - sb_now_ns()) <= 0)
            return -2;
        r = poll(&pf, 1, (int)((left + MS - 1) / MS));
        if (r == 0)
            return -2;
        if (r == 1)
            r = recv(fd, c, n, MSG_DONTWAIT);
        if (r == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* fetch_request: the records of GET /status?query, not kept, into req
 * (512 bytes; query at most 100).  Results: their length. */
static size_t
fetch_request(unsigned char *req, const char *query)
{
    unsigned char pairs[300];
    size_t plen = 0, rl;

    plen += wire_put_pair(pairs + plen, "REQUEST_METHOD", "GET");
    plen += wire_put_pair(pairs + plen, "REQUEST_URI", "/status");
    plen += wire_put_pair(pairs + plen, "QUERY_STRING", query);
    /* BEGIN_REQUEST (responder, no keep-conn), PARAMS, end, STDIN end. */
    memcpy(req, "\1\1\0\1\0\10\0\0\0\1\0\0\0\0\0\0", 16);
    rl = 16;
    memcpy(req + rl, "\1\4\0\1", 4);
    req[rl + 4] = (unsigned char)(plen >> 8);
    req[rl + 5] = (unsigned char)plen;
    req[rl + 6] = req[rl + 7] = 0;
    memcpy(req + rl + 8, pairs, plen);
    rl += 8 + plen;
    memcpy(req + rl, "\1\4\0\1\0\0\0\0\1\5\0\1\0\0\0\0", 16);
    return rl + 16;
}

/*
 * fetch_answer: the content of the FCGI_STDOUT records up to
 * FCGI_END_REQUEST, malloc'd into *body (*blen bytes).  Results: 0, -1
 * when the answer breaks off or passes FETCH_MAX, -2 when it is late.
 */
static int
fetch_answer(int fd, int64_t deadline, unsigned char **body, size_t *blen)
{
    unsigned char rec[WIRE_HEADER_LEN], *nb;
    size_t clen, pad, cap = 0;
    int r;

    *body = NULL;
    *blen = 0;
    for (;;) {
        if ((r = recv_by(fd, rec, sizeof(rec), deadline)) != 0)
            return r;
        clen = (size_t)rec[4] << 8 | rec[5];
        pad = rec[6];
        if (*blen + clen + pad > FETCH_MAX)
            return -1;
        if (*blen + clen + pad > cap) {
            cap = (*blen + clen + pad) * 2;
            if ((nb = realloc(*body, cap)) == NULL)
                return -1;
            *body = nb;
        }
        if (clen + pad > 0 &&
            (r = recv_by(fd, *body + *blen, clen + pad, deadline)) != 0)
            return r;
        if (rec[1] == WIRE_END_REQUEST)
            return 0;
        if (rec[1] == WIRE_STDOUT)
            *blen += clen;
    }
}

int
status_fetch(const char *path, const char *query, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    /* connect() to a unix socket waits while its queue is full. */
    struct timeval tv = {fetch_ms / 1000, fetch_ms % 1000 * 1000};
    int64_t deadline = sb_now_ns() + fetch_ms * MS;
    unsigned char req[512], *body;
    size_t rl, blen;
    char *sep, status[64] = "";
    int fd, r;

    if (strlen(path) >= sizeof(sun.sun_path) || strlen(query) > 100)
        return errmsg(err, errlen, "status socket %s: path or query too long",
                      path);
    strcpy(sun.sun_path, path);
    rl = fetch_request(req, query);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
        connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
        send(fd, req, rl, MSG_NOSIGNAL) != (ssize_t)rl) {
        errmsg(err, errlen, "status socket %s: %s", path, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    r = fetch_answer(fd, deadline, &body, &blen);
    close(fd);
    /* Past the CGI headers, the page. */
    sep = r == 0 && body != NULL ? memmem(body, blen, "\r\n\r\n", 4) : NULL;
    if (sep != NULL) {
        fwrite(sep + 4, 1, blen - (size_t)((unsigned char *)sep + 4 - body),
               stdout);
        /* The first header is the status; its line, for the message. */
        if (blen > 8 && memcmp(body, "Status: ", 8) == 0 &&
            memcmp(body + 8, "200", 3) != 0)
            snprintf(status, sizeof(status), "%.*s",
                     (int)strcspn((char *)body + 8, "\r"), (char *)body + 8);
    }
    free(body);
    if (r == -2)
        return errmsg(err, errlen, "status socket %s: no answer within %d ms",
                      path, fetch_ms);
    if (r == -1)
        return errmsg(err, errlen, "status socket %s: the answer broke off",
                      path);
    if (sep == NULL)
        return errmsg(err, errlen, "status: no page came back");
    return status[0] == '\0'
               ? 0
               : errmsg(err, errlen, "status socket %s: %s", path, status);
}
