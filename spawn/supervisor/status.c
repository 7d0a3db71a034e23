/*
 * status.c: the pool's status page; see status.h.
 *
 * Read top to bottom: how deep the listen queue is, a snapshot of the
 * scoreboard, the three renderings of it, the FastCGI loop that serves
 * them (records judged by wire.c, as the workers' are), and the command's
 * client.
 */
#define _GNU_SOURCE
#include "status.h"
#include "version.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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
#include "scoreboard.h"
#include "wire.h"

/* A request must arrive whole within this, or its connection is closed. */
#define READ_DEADLINE_MS 2000
/* How often the listen queue is looked at while no request comes. */
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
        (n = recv(s, buf, sizeof(buf), 0)) <= 0)
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

static void
text(FILE *f, const struct status_info *info, const struct snapshot *s,
     int full)
{
    char when[64];
    struct tm tm;
    int i, j;

    gmtime_r(&(time_t){(time_t)s->pool.started_unix}, &tm);
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    fprintf(f,
            "pool:                 %s\n"
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
            info->pool, when,
            (long long)(s->now - (time_t)s->pool.started_unix),
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
    for (i = 0; i < s->n; i++) {
        const struct sb_stats *w = &s->w[i];

        fprintf(
            f,
            "\n************************\n"
            "pid:                  %ld\n"
            "state:                %s\n"
            "start since:          %lld\n"
            "requests:             %llu\n"
            "accepted conn:        %llu\n"
            "route:                %s\n"
            "request duration:     %llu\n"
            "last request us:      read %u db %u app %u write %u\n"
            "responses:            1xx %llu 2xx %llu 3xx %llu 4xx %llu "
            "5xx %llu\n"
            "db reconnects:        %llu\n"
            "slow requests:        %llu\n"
            "rss kb:               %ld\n",
            (long)w->pid, state_names[w->state],
            (long long)((s->now_ns - w->started_ns) / 1000000000),
            (unsigned long long)w->requests, (unsigned long long)w->accepted,
            w->route, (unsigned long long)duration_us(s, w), w->last_us[0],
            w->last_us[1], w->last_us[2], w->last_us[3],
            (unsigned long long)w->status[0], (unsigned long long)w->status[1],
            (unsigned long long)w->status[2], (unsigned long long)w->status[3],
            (unsigned long long)w->status[4], (unsigned long long)w->reconnects,
            (unsigned long long)w->slow, rss_kb(w->pid));
    }
}

/* json_str: s as a JSON string; routes are paths, but a worker wrote it. */
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

static void
prometheus(FILE *f, const struct status_info *info, const struct snapshot *s,
           int full)
{
    const char *p = info->pool;
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

/* write_all: n bytes, whatever it takes; -1 when the peer is gone. */
static int
write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    ssize_t w;

    while (n > 0) {
        if ((w = send(fd, c, n, MSG_NOSIGNAL)) <= 0) {
            if (w == -1 && errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* respond: the CGI response in FCGI_STDOUT records, then the end. */
static void
respond(int fd, unsigned id, const char *type, const char *body, size_t blen)
{
    char head[160];
    unsigned char hdr[WIRE_HEADER_LEN], end[WIRE_END_REQUEST_LEN];
    size_t hlen, off, chunk;

    hlen = (size_t)snprintf(head, sizeof(head),
                            "Status: 200 OK\r\nContent-Type: %s\r\n"
                            "Cache-Control: no-store\r\n\r\n",
                            type);
    wire_stdout(hdr, id, hlen);
    if (write_all(fd, hdr, sizeof(hdr)) == -1 ||
        write_all(fd, head, hlen) == -1)
        return;
    for (off = 0; off < blen; off += chunk) {
        chunk = blen - off > 65535 ? 65535 : blen - off;
        wire_stdout(hdr, id, chunk);
        if (write_all(fd, hdr, sizeof(hdr)) == -1 ||
            write_all(fd, body + off, chunk) == -1)
            return;
    }
    wire_stdout(hdr, id, 0);
    write_all(fd, hdr, sizeof(hdr));
    wire_end_request(end, id, 0, WIRE_REQUEST_COMPLETE);
    write_all(fd, end, sizeof(end));
}

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
 * one: a connection's requests: wait for each whole within the deadline,
 * answer it, until the peer closes or lies.
 */
static void
one(int fd, const struct status_info *info, unsigned char *buf)
{
    static const struct wire_limits lim = {REQUEST_MAX};
    struct wire_values values = {1, 1};
    unsigned char pairs[REQUEST_MAX], answer[WIRE_VALUES_MAX];
    char query[512], accept[256], *page;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    enum status_format fmt;
    struct wire_result v;
    const char *type;
    size_t len;
    ssize_t n;
    long plen;
    int full;

    int64_t deadline = sb_now_ns() + READ_DEADLINE_MS * 1000000LL, left;

    for (;;) {
        left = (deadline - sb_now_ns()) / 1000000;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0 ||
            (n = recv(fd, buf, REQUEST_MAX + 1, MSG_PEEK)) <= 0)
            return;
        wire_judge(buf, (size_t)n, 0, &lim, &v);
        if (v.verdict == WIRE_MORE) {
            /* Half a request: give the rest a moment, within the deadline
             * (the bytes already there keep poll from waiting). */
            usleep(10000);
            continue;
        }
        if (v.verdict == WIRE_BAD || v.verdict == WIRE_OTHER_ROLE ||
            v.verdict == WIRE_SKIP || v.verdict == WIRE_ABORTED ||
            recv(fd, buf, v.len, MSG_WAITALL) != (ssize_t)v.len)
            return;
        if (v.verdict == WIRE_MANAGEMENT) {
            if (write_all(fd, answer, wire_answer(answer, buf, &v, &values)) ==
                -1)
                return;
            continue;
        }
        plen = wire_gather(buf, v.len, WIRE_PARAMS, v.id, pairs, sizeof(pairs));
        if (plen < 0)
            return;
        param(pairs, (size_t)plen, "QUERY_STRING", query, sizeof(query));
        param(pairs, (size_t)plen, "HTTP_ACCEPT", accept, sizeof(accept));
        fmt = status_format_of(query, accept, &full);
        if (status_render(info, fmt, full, &page, &len, &type) == -1)
            return;
        respond(fd, v.id, type, page, len);
        free(page);
        if (!v.keep)
            return;
        deadline = sb_now_ns() + READ_DEADLINE_MS * 1000000LL;
    }
}

void
status_serve(int fd, const struct status_info *info)
{
    static unsigned char buf[REQUEST_MAX + 1];
    struct timeval wdeadline = {.tv_sec = READ_DEADLINE_MS / 1000};
    struct pollfd p = {.fd = fd, .events = POLLIN};
    unsigned len;
    int c;

    for (;;) {
        /* Between requests, the listen queue is sampled for its maximum. */
        if (poll(&p, 1, SAMPLE_MS) <= 0) {
            sample_queue(info, &len);
            continue;
        }
        if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
            continue;
        /* A peer that stops reading holds the page no longer than one
         * that stops writing. */
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &wdeadline, sizeof(wdeadline));
        one(c, info, buf);
        close(c);
    }
}

/* --- the command's client ---------------------------------------------- */

int
status_fetch(const char *path, const char *query, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    /* The status process answers within its own deadline; a wedged one
     * must not hang the command. */
    struct timeval deadline = {.tv_sec = 5};
    unsigned char req[512], pairs[300], rec[8], *body = NULL;
    size_t plen = 0, rl = 0, blen = 0, cap = 0, clen, pad;
    ssize_t n;
    int fd, started = 0;
    char *sep;

    if (strlen(path) >= sizeof(sun.sun_path) || strlen(query) > 100)
        return errmsg(err, errlen, "status socket %s: path or query too long",
                      path);
    strcpy(sun.sun_path, path);
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
    rl += 16;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof(deadline)) ==
            -1 ||
        connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        errmsg(err, errlen, "status socket %s: %s", path, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    if (write_all(fd, req, rl) == -1)
        goto fail;
    /* The FCGI_STDOUT records' content, up to FCGI_END_REQUEST. */
    for (;;) {
        if ((n = recv(fd, rec, sizeof(rec), MSG_WAITALL)) != sizeof(rec))
            goto fail;
        clen = (size_t)rec[4] << 8 | rec[5];
        pad = rec[6];
        if (blen + clen + pad > cap) {
            unsigned char *nb = realloc(body, cap = (blen + clen + pad) * 2);

            if (nb == NULL)
                goto fail;
            body = nb;
        }
        if (clen + pad > 0 && recv(fd, body + blen, clen + pad, MSG_WAITALL) !=
                                  (ssize_t)(clen + pad))
            goto fail;
        if (rec[1] == WIRE_END_REQUEST)
            break;
        if (rec[1] == WIRE_STDOUT)
            blen += clen;
    }
    close(fd);
    /* Past the CGI headers, the page. */
    sep = body == NULL ? NULL : memmem(body, blen, "\r\n\r\n", 4);
    if (sep != NULL) {
        started = (int)((unsigned char *)sep + 4 - body);
        fwrite(body + started, 1, blen - (size_t)started, stdout);
    }
    free(body);
    return sep != NULL ? 0 : errmsg(err, errlen, "status: no page came back");

fail:
    close(fd);
    free(body);
    return errmsg(err, errlen, "status socket %s: the answer broke off", path);
}
