/*
 * status.c: the pool's status page; see status.h.
 *
 * Read top to bottom: how deep the listen queue is, a snapshot of the
 * scoreboard, the three renderings of it, the FastCGI loop that serves
 * them (records judged by wire.c, as the workers' are), and the command's
 * client.
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
#include "version.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "log.h"
#include "scoreboard.h"
#include "wire.h"

/* How often the listen queue is looked at. */
#define SAMPLE_MS 100
/* A status request: a few hundred bytes of parameters. */
#define REQUEST_MAX 16384

static const char *const state_names[] = {"Empty",    "Starting",  "Idle",
                                          "Busy",     "Exiting",   "Reading",
                                          "Database", "Rendering", "Writing"};
static const char *const phase_names[SB_PHASES] = {"reading", "database",
                                                   "rendering", "writing"};

/* --- the listen queue ------------------------------------------------ */

/*
 * unix_queue: the connections waiting in a unix listening socket's
 * queue, from the kernel's socket diagnostics (what ss -xl shows as
 * Recv-Q), and its length (Send-Q).  Results: 0, or -1.
 */
static int
unix_queue(int fd, unsigned *queued, unsigned *len)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
    struct unix_diag_msg *m;
    struct nlmsghdr *h;
    struct rtattr *a;
    char buf[4096];
    struct stat st;
    ssize_t n;
    int s, ret = -1, alen;

    if (fstat(fd, &st) == -1 ||
        (s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
                    NETLINK_SOCK_DIAG)) == -1)
        return -1;
    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = 1u << 10; /* TCP_LISTEN */
    msg.req.udiag_ino = (uint32_t)st.st_ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0U;
    if (sendto(s, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) ==
            -1 ||
        /* The kernel answers within sendto(): nothing to wait for. */
        (n = recv(s, buf, sizeof(buf), MSG_DONTWAIT)) <= 0)
        goto out;
    for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
            break;
        m = NLMSG_DATA(h);
        alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
        for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
             a = RTA_NEXT(a, alen)) {
            if (a->rta_type == UNIX_DIAG_RQLEN &&
                RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                struct unix_diag_rqlen *q = RTA_DATA(a);

                *queued = q->udiag_rqueue;
                *len = q->udiag_wqueue;
                ret = 0;
            }
        }
    }
out:
    close(s);
    return ret;
}

/* listen_queue: connections waiting to be accepted, and the queue's length
 * as the kernel has it (0 when it cannot tell). */
static unsigned
listen_queue(int fd, unsigned *len)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    struct tcp_info ti;
    socklen_t tlen = sizeof(ti);
    unsigned q = 0;

    *len = 0;
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) == -1)
        return 0;
    if (sa.ss_family == AF_UNIX) {
        unix_queue(fd, &q, len);
    } else if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == 0) {
        /* For a listening socket: the accept queue, and its length. */
        q = ti.tcpi_unacked;
        *len = ti.tcpi_sacked;
    }
    return q;
}

/* The deepest queue seen by this process since it started. */
static unsigned max_queue;

static unsigned
sample_queue(const struct status_info *info, unsigned *len)
{
    unsigned q = listen_queue(info->listen_fd, len);

    if (q > max_queue)
        max_queue = q;
    return q;
}

/* --- a snapshot of the scoreboard --------------------------------------- */

struct snapshot {
    struct sb_pool pool;
    time_t now;
    int64_t now_ns;
    unsigned queue, queue_len, max_queue;
    int total, idle, active;
    uint64_t accepted, requests, slow, reconnects, status[5];
    uint64_t phase_ns[SB_PHASES];
    int n;
    struct sb_stats *w; /* the workers, n of them */
};

static int
snapshot(const struct status_info *info, struct snapshot *s)
{
    int i, j, nslots = sb_nslots(info->sb);
    struct sb_stats st;

    memset(s, 0, sizeof(*s));
    if ((s->w = calloc((size_t)nslots, sizeof(*s->w))) == NULL)
        return -1;
    sb_pool(info->sb, &s->pool);
    s->now = time(NULL);
    s->now_ns = sb_now_ns();
    s->queue = sample_queue(info, &s->queue_len);
    if (s->queue_len == 0)
        s->queue_len = (unsigned)info->backlog;
    s->max_queue = max_queue;
    for (i = 0; i < nslots; i++) {
        sb_stats(sb_slot(info->sb, i), &st);
        if (st.state == SB_EMPTY || st.pid <= 0)
            continue;
        s->w[s->n++] = st;
        s->total++;
        /* php-fpm's sum: idle + active = total; one starting or leaving
         * serves no request. */
        if (sb_busy(st.state))
            s->active++;
        else
            s->idle++;
        s->accepted += st.accepted;
        s->requests += st.requests;
        s->slow += st.slow;
        s->reconnects += st.reconnects;
        for (j = 0; j < 5; j++)
            s->status[j] += st.status[j];
        for (j = 0; j < SB_PHASES; j++)
            s->phase_ns[j] += st.phase_ns[j];
    }
    return 0;
}

/* rss_kb: a process's resident memory, from /proc; 0 when gone. */
static long
rss_kb(pid_t pid)
{
    char path[64];
    long pages = 0, rss = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* duration_us: the request in progress, or the last one finished. */
static uint64_t
duration_us(const struct snapshot *s, const struct sb_stats *w)
{
    if (sb_busy(w->state) && w->busy_since_ns > 0 &&
        w->busy_since_ns <= s->now_ns)
        return (uint64_t)(s->now_ns - w->busy_since_ns) / 1000;
    return w->last_total_us;
}

/* --- the renderings ------------------------------------------------------ */

/*
 * text_str: s for the text page, one line whatever it holds: a route is
 * a path a client chose, written by a worker, and a "\n" in it must not
 * start a line of its own ("idle processes: 999").  Backslash, control
 * characters and every byte past ASCII (which need not be UTF-8, and
 * could be U+0085 or U+2028, line breaks to some readers) are escaped:
 * \\, \n, \r, \t, else \xHH.
 */
static void
text_str(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '\\')
            fputs("\\\\", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

/* text_worker: one worker's block of the full text page. */
static void
text_worker(FILE *f, const struct snapshot *s, const struct sb_stats *w)
{
    fprintf(f,
            "\n************************\n"
            "pid:                  %ld\n"
            "state:                %s\n"
            "start since:          %lld\n"
            "requests:             %llu\n"
            "accepted conn:        %llu\n"
            "route:                ",
            (long)w->pid, state_names[w->state],
            (long long)((s->now_ns - w->started_ns) / 1000000000),
            (unsigned long long)w->requests, (unsigned long long)w->accepted);
    text_str(f, w->route);
    fprintf(f,
            "\n"
            "request duration:     %llu\n"
            "last request us:      read %u db %u app %u write %u\n"
            "responses:            1xx %llu 2xx %llu 3xx %llu 4xx %llu "
            "5xx %llu\n"
            "db reconnects:        %llu\n"
            "slow requests:        %llu\n"
            "rss kb:               %ld\n",
            (unsigned long long)duration_us(s, w), w->last_us[0], w->last_us[1],
            w->last_us[2], w->last_us[3], (unsigned long long)w->status[0],
            (unsigned long long)w->status[1], (unsigned long long)w->status[2],
            (unsigned long long)w->status[3], (unsigned long long)w->status[4],
            (unsigned long long)w->reconnects, (unsigned long long)w->slow,
            rss_kb(w->pid));
}

static void
text(FILE *f, const struct status_info *info, const struct snapshot *s,
     int full)
{
    char when[64];
    struct tm tm;
    int i, j;

    gmtime_r(&(time_t){(time_t)s->pool.started_unix}, &tm);
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    fputs("pool:                 ", f);
    text_str(f, info->pool);
    fprintf(f,
            "\n"
            "process manager:      static\n"
            "start time:           %s\n"
            "start since:          %lld\n"
            "accepted conn:        %llu\n"
            "listen queue:         %u\n"
            "max listen queue:     %u\n"
            "listen queue len:     %u\n"
            "idle processes:       %d\n"
            "active processes:     %d\n"
            "total processes:      %d\n"
            "max active processes: %d\n"
            "max children reached: %llu\n"
            "slow requests:        %llu\n"
            "requests:             %llu\n",
            when, (long long)(s->now - (time_t)s->pool.started_unix),
            (unsigned long long)s->accepted, s->queue, s->max_queue,
            s->queue_len, s->idle, s->active, s->total, s->pool.max_active,
            (unsigned long long)s->pool.max_children_reached,
            (unsigned long long)s->slow, (unsigned long long)s->requests);
    for (j = 0; j < SB_PHASES; j++)
        fprintf(f, "%s seconds:%*s%.6f\n", phase_names[j],
                (int)(13 - strlen(phase_names[j])), "",
                (double)s->phase_ns[j] / 1e9);
    for (j = 0; j < 5; j++)
        fprintf(f, "responses %dxx:        %llu\n", j + 1,
                (unsigned long long)s->status[j]);
    fprintf(f, "db reconnects:        %llu\n",
            (unsigned long long)s->reconnects);
    fprintf(f, "version:              %s\n", tfb_version);
    if (!full)
        return;
    for (i = 0; i < s->n; i++)
        text_worker(f, s, &s->w[i]);
}

/*
 * json_str: s as a JSON string; routes are paths, but a worker wrote it.
 * The quote, the backslash and every control character are escaped, as
 * JSON requires; bytes past ASCII too (\u00XX), since they need not be
 * UTF-8 and a JSON text must be.
 */
static void
json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* json_counts: ,"phase seconds":{...},"responses":{...} */
static void
json_counts(FILE *f, const uint64_t phase_ns[SB_PHASES],
            const uint64_t status[5])
{
    int j;

    fprintf(f, ",\"phase seconds\":{");
    for (j = 0; j < SB_PHASES; j++)
        fprintf(f, "%s\"%s\":%.6f", j ? "," : "", phase_names[j],
                (double)phase_ns[j] / 1e9);
    fprintf(f, "},\"responses\":{");
    for (j = 0; j < 5; j++)
        fprintf(f, "%s\"%dxx\":%llu", j ? "," : "", j + 1,
                (unsigned long long)status[j]);
    fputc('}', f);
}

static void
json(FILE *f, const struct status_info *info, const struct snapshot *s,
     int full)
{
    int i, j;

    fprintf(f, "{\"pool\":");
    json_str(f, info->pool);
    fprintf(f,
            ",\"process manager\":\"static\",\"start time\":%lld,"
            "\"start since\":%lld,\"accepted conn\":%llu,"
            "\"listen queue\":%u,\"max listen queue\":%u,"
            "\"listen queue len\":%u,\"idle processes\":%d,"
            "\"active processes\":%d,\"total processes\":%d,"
            "\"max active processes\":%d,\"max children reached\":%llu,"
            "\"slow requests\":%llu,\"requests\":%llu,\"db reconnects\":%llu",
            (long long)s->pool.started_unix,
            (long long)(s->now - (time_t)s->pool.started_unix),
            (unsigned long long)s->accepted, s->queue, s->max_queue,
            s->queue_len, s->idle, s->active, s->total, s->pool.max_active,
            (unsigned long long)s->pool.max_children_reached,
            (unsigned long long)s->slow, (unsigned long long)s->requests,
            (unsigned long long)s->reconnects);
    json_counts(f, s->phase_ns, s->status);
    fprintf(f, ",\"version\":\"%s\"", tfb_version);
    if (full) {
        fprintf(f, ",\"processes\":[");
        for (i = 0; i < s->n; i++) {
            const struct sb_stats *w = &s->w[i];

            fprintf(f,
                    "%s{\"pid\":%ld,\"state\":\"%s\",\"start since\":%lld,"
                    "\"requests\":%llu,\"accepted conn\":%llu,\"route\":",
                    i ? "," : "", (long)w->pid, state_names[w->state],
                    (long long)((s->now_ns - w->started_ns) / 1000000000),
                    (unsigned long long)w->requests,
                    (unsigned long long)w->accepted);
            json_str(f, w->route);
            fprintf(f, ",\"request duration\":%llu,\"last request us\":{",
                    (unsigned long long)duration_us(s, w));
            for (j = 0; j < SB_PHASES; j++)
                fprintf(f, "%s\"%s\":%u", j ? "," : "", phase_names[j],
                        w->last_us[j]);
            fputc('}', f);
            json_counts(f, w->phase_ns, w->status);
            fprintf(f,
                    ",\"db reconnects\":%llu,\"slow requests\":%llu,"
                    "\"rss kb\":%ld}",
                    (unsigned long long)w->reconnects,
                    (unsigned long long)w->slow, rss_kb(w->pid));
        }
        fputc(']', f);
    }
    fprintf(f, "}\n");
}

/* metric: a HELP and TYPE header for name. */
static void
metric(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * prom_label: s as a Prometheus label value, into out (cap bytes): the
 * text format escapes backslash, double quote and newline, and nothing
 * else; the value is cut, never in the middle of an escape, if it does
 * not fit.  The pool's name is checked at start-up to need none of it;
 * this page does not count on that.
 */
static const char *
prom_label(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    for (; *s != '\0' && n + 3 <= cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n')
            out[n++] = '\\';
        out[n++] = *s == '\n' ? 'n' : *s;
    }
    out[n] = '\0';
    return out;
}

static void
prometheus(FILE *f, const struct status_info *info, const struct snapshot *s,
           int full)
{
    char pool[2 * 64 + 1];
    const char *p = prom_label(info->pool, pool, sizeof(pool));
    int i, j;

    metric(f, "tfb_pool_start_time_seconds", "gauge",
           "When the pool started, in seconds since the epoch.");
    fprintf(f, "tfb_pool_start_time_seconds{pool=\"%s\"} %lld\n", p,
            (long long)s->pool.started_unix);
    metric(f, "tfb_build_info", "gauge", "The pool's version, as a label.");
    fprintf(f, "tfb_build_info{pool=\"%s\",version=\"%s\"} 1\n", p,
            tfb_version);
    metric(f, "tfb_pool_accepted_connections_total", "counter",
           "FastCGI connections the workers accepted.");
    fprintf(f, "tfb_pool_accepted_connections_total{pool=\"%s\"} %llu\n", p,
            (unsigned long long)s->accepted);
    metric(f, "tfb_pool_listen_queue", "gauge",
           "Connections waiting in the listen queue.");
    fprintf(f, "tfb_pool_listen_queue{pool=\"%s\"} %u\n", p, s->queue);
    metric(f, "tfb_pool_max_listen_queue", "gauge",
           "The deepest listen queue seen since the status process started.");
    fprintf(f, "tfb_pool_max_listen_queue{pool=\"%s\"} %u\n", p, s->max_queue);
    metric(f, "tfb_pool_listen_queue_length", "gauge",
           "The length of the listen queue.");
    fprintf(f, "tfb_pool_listen_queue_length{pool=\"%s\"} %u\n", p,
            s->queue_len);
    metric(f, "tfb_pool_processes", "gauge", "Workers, by state.");
    fprintf(f, "tfb_pool_processes{pool=\"%s\",state=\"idle\"} %d\n", p,
            s->idle);
    fprintf(f, "tfb_pool_processes{pool=\"%s\",state=\"active\"} %d\n", p,
            s->active);
    metric(f, "tfb_pool_max_active_processes", "gauge",
           "The most workers serving at once since the pool started.");
    fprintf(f, "tfb_pool_max_active_processes{pool=\"%s\"} %d\n", p,
            s->pool.max_active);
    metric(f, "tfb_pool_max_children_reached_total", "counter",
           "Times a worker more was asked for at --max-workers.");
    fprintf(f, "tfb_pool_max_children_reached_total{pool=\"%s\"} %llu\n", p,
            (unsigned long long)s->pool.max_children_reached);
    metric(f, "tfb_pool_slow_requests_total", "counter",
           "Requests over the slow-request threshold.");
    fprintf(f, "tfb_pool_slow_requests_total{pool=\"%s\"} %llu\n", p,
            (unsigned long long)s->slow);
    metric(f, "tfb_pool_requests_total", "counter", "Requests served.");
    fprintf(f, "tfb_pool_requests_total{pool=\"%s\"} %llu\n", p,
            (unsigned long long)s->requests);
    metric(f, "tfb_pool_responses_total", "counter",
           "Responses, by HTTP status class.");
    for (j = 0; j < 5; j++)
        fprintf(f,
                "tfb_pool_responses_total{pool=\"%s\",class=\"%dxx\"} %llu\n",
                p, j + 1, (unsigned long long)s->status[j]);
    metric(f, "tfb_pool_phase_seconds_total", "counter",
           "Time requests spent in each phase.");
    for (j = 0; j < SB_PHASES; j++)
        fprintf(f,
                "tfb_pool_phase_seconds_total{pool=\"%s\",phase=\"%s\"} %.6f\n",
                p, phase_names[j], (double)s->phase_ns[j] / 1e9);
    metric(f, "tfb_pool_db_reconnects_total", "counter",
           "Database connections made again.");
    fprintf(f, "tfb_pool_db_reconnects_total{pool=\"%s\"} %llu\n", p,
            (unsigned long long)s->reconnects);
    if (!full)
        return;
    metric(f, "tfb_worker_requests_total", "counter",
           "Requests each worker served.");
    for (i = 0; i < s->n; i++)
        fprintf(f, "tfb_worker_requests_total{pool=\"%s\",pid=\"%ld\"} %llu\n",
                p, (long)s->w[i].pid, (unsigned long long)s->w[i].requests);
    metric(f, "tfb_worker_resident_bytes", "gauge",
           "Each worker's resident memory.");
    for (i = 0; i < s->n; i++)
        fprintf(f, "tfb_worker_resident_bytes{pool=\"%s\",pid=\"%ld\"} %ld\n",
                p, (long)s->w[i].pid, rss_kb(s->w[i].pid) * 1024);
}

/* has_word: the query names w as a parameter (w, or w=...). */
static int
has_word(const char *query, const char *w)
{
    size_t n = strlen(w), len;

    while (query != NULL && *query != '\0') {
        len = strcspn(query, "&");
        if (len >= n && strncmp(query, w, n) == 0 &&
            (len == n || query[n] == '='))
            return 1;
        query += len + (query[len] == '&');
    }
    return 0;
}

enum status_format
status_format_of(const char *query, const char *accept, int *full)
{
    *full = has_word(query, "full");
    if (has_word(query, "prometheus") ||
        (accept != NULL &&
         (strstr(accept, "version=0.0.4") != NULL ||
          strstr(accept, "application/openmetrics-text") != NULL)))
        return STATUS_PROMETHEUS;
    if (has_word(query, "json"))
        return STATUS_JSON;
    return STATUS_TEXT;
}

int
status_render(const struct status_info *info, enum status_format fmt, int full,
              char **out, size_t *len, const char **type)
{
    struct snapshot s;
    FILE *f;

    if (snapshot(info, &s) == -1)
        return -1;
    if ((f = open_memstream(out, len)) == NULL) {
        free(s.w);
        return -1;
    }
    switch (fmt) {
    case STATUS_JSON:
        *type = "application/json";
        json(f, info, &s, full);
        break;
    case STATUS_PROMETHEUS:
        *type = "text/plain; version=0.0.4; charset=utf-8";
        prometheus(f, info, &s, full);
        break;
    default:
        *type = "text/plain; charset=utf-8";
        text(f, info, &s, full);
        break;
    }
    free(s.w);
    return fclose(f) == 0 ? 0 : -1;
}

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

/*
 * frame: the CGI response to request id as FastCGI records: the headers
 * and the body in FCGI_STDOUT records, the empty one, FCGI_END_REQUEST.
 * Results: the records, malloc'd (*len bytes), or NULL.
 */
static unsigned char *
frame(unsigned id, const char *type, const char *body, size_t blen, size_t *len)
{
    char head[160];
    size_t hlen, off, chunk, n;
    unsigned char *out, *p;

    hlen = (size_t)snprintf(head, sizeof(head),
                            "Status: 200 OK\r\nContent-Type: %s\r\n"
                            "Cache-Control: no-store\r\n\r\n",
                            type);
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
    char query[512], accept[256], *page;
    enum status_format fmt;
    unsigned char *out;
    const char *type;
    size_t len, olen;
    long plen;
    int full;

    plen = wire_gather(c->in, v->len, WIRE_PARAMS, v->id, pairs, sizeof(pairs));
    if (plen < 0)
        return -1;
    param(pairs, (size_t)plen, "QUERY_STRING", query, sizeof(query));
    param(pairs, (size_t)plen, "HTTP_ACCEPT", accept, sizeof(accept));
    fmt = status_format_of(query, accept, &full);
    if (status_render(info, fmt, full, &page, &len, &type) == -1)
        return -1;
    out = frame(v->id, type, page, len, &olen);
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
                       : now + SAMPLE_MS * MS;
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
    unsigned len;

    assert(budget.clients >= 1 && budget.clients <= CLIENTS_MAX);
    for (i = 0; i < CLIENTS_MAX; i++)
        cl[i].fd = -1;
    /* Ours alone: the supervisor never accepts on it. */
    if ((fl = fcntl(fd, F_GETFL)) != -1)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        /* The listen queue is sampled for its maximum, busy or not. */
        if (now >= sample) {
            sample_queue(info, &len);
            sample = now + SAMPLE_MS * MS;
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
    char *sep;
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
    if (sep != NULL)
        fwrite(sep + 4, 1, blen - (size_t)((unsigned char *)sep + 4 - body),
               stdout);
    free(body);
    if (r == -2)
        return errmsg(err, errlen, "status socket %s: no answer within %d ms",
                      path, fetch_ms);
    if (r == -1)
        return errmsg(err, errlen, "status socket %s: the answer broke off",
                      path);
    return sep != NULL ? 0 : errmsg(err, errlen, "status: no page came back");
}
