/*
 * page.c: what the status page says; see page.h and status.h.
 *
 * Read top to bottom: how deep the listen queue is, the history of the
 * last seconds, a snapshot of the scoreboard and what follows from it
 * (rates, quantiles, health), then each rendering: text (php-fpm's
 * fields), JSON, Prometheus and OpenMetrics, HTML, the compact view of
 * `tfb-spawn status --watch`, the health line; last, which one a request
 * asks for.
 *
 * Everything a worker wrote (a route comes from a client; the database's
 * error from libpq) and the pool's name are escaped for each format: in
 * the text page and the compact view backslash, control characters and
 * bytes past ASCII (\\, \n, \r, \t, \xHH); in JSON as JSON strings;
 * in Prometheus' and OpenMetrics' labels backslash, double quote and
 * newline (a byte past ASCII becomes "?": the formats want UTF-8); in
 * HTML &, <, >, " and ' as entities, control bytes as U+FFFD.
 */
#define _GNU_SOURCE
#include "page.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "pm.h"
#include "scoreboard.h"
#include "version.h"

#define MS 1000000LL /* nanoseconds */

static const char *const state_names[] = {"Empty",    "Starting",  "Idle",
                                          "Busy",     "Exiting",   "Reading",
                                          "Database", "Rendering", "Writing"};
static const char *const phase_names[SB_PHASES] = {"reading", "database",
                                                   "rendering", "writing"};
static const char *const db_names[] = {"none", "up", "down"};

/* --- the listen queue ------------------------------------------------ */

/* The deepest queue seen by this process since it started. */
static unsigned max_queue;

static unsigned
sample_queue(const struct status_info *info, unsigned *len)
{
    unsigned q = listener_queue(info->listen_fd, len);

    if (q > max_queue)
        max_queue = q;
    return q;
}

/* --- the pool's counters, now and in the last seconds ------------------- */

/* Route histograms summed over the slots, by name: room for each slot's
 * own names and as many again (workers of another build during a rolling
 * restart); past that, "other". */
#define ROUTES_MAX (2 * SB_ROUTES)

struct route_agg {
    char name[SB_LABEL_MAX];
    struct sb_hist h;
};

/* What the history keeps of a moment. */
struct counts {
    int64_t t_ns;
    uint64_t requests, errors; /* errors: 5xx answers */
    int nroutes;
    struct route_agg routes[ROUTES_MAX];
};

static void
hist_add(struct sb_hist *to, const struct sb_hist *h)
{
    int i;

    for (i = 0; i < SB_BUCKETS; i++)
        to->bucket[i] += h->bucket[i];
    to->sum_us += h->sum_us;
}

/* route_of: c's entry named name, made if new (else "other"'s). */
static struct route_agg *
route_of(struct counts *c, const char *name)
{
    int i;

    for (i = 0; i < c->nroutes; i++)
        if (strcmp(c->routes[i].name, name) == 0)
            return &c->routes[i];
    if (c->nroutes == ROUTES_MAX)
        return strcmp(name, "other") == 0 ? &c->routes[ROUTES_MAX - 1]
                                          : route_of(c, "other");
    memset(&c->routes[c->nroutes], 0, sizeof(c->routes[0]));
    memcpy(c->routes[c->nroutes].name, name, SB_LABEL_MAX);
    return &c->routes[c->nroutes++];
}

/* count_slot: slot's totals and route histograms into c (and *tot). */
static void
count_slot(const struct sb_slot *slot, struct counts *c, struct sb_totals *tot)
{
    char name[SB_LABEL_MAX];
    struct sb_hist h;
    int i;

    sb_totals(slot, tot);
    c->requests += tot->requests;
    c->errors += tot->status[4];
    for (i = 0; i < SB_ROUTES; i++)
        if (sb_route_hist(slot, i, name, &h))
            hist_add(&route_of(c, name)->h, &h);
}

/* The history: a moment a second, the last PAGE_WINDOW_S seconds. */
static struct counts history[PAGE_WINDOW_S + 1];
static int history_len, history_next;
static int64_t next_queue_ns, next_history_ns;

void
page_sample(const struct status_info *info, int64_t now)
{
    struct counts *c;
    struct sb_totals tot;
    unsigned len;
    int i;

    if (now >= next_queue_ns) {
        sample_queue(info, &len);
        next_queue_ns = now + PAGE_SAMPLE_MS * MS;
    }
    if (now < next_history_ns)
        return;
    next_history_ns = now + 1000 * MS;
    c = &history[history_next];
    memset(c, 0, sizeof(*c));
    c->t_ns = now;
    for (i = 0; i < sb_nslots(info->sb); i++)
        count_slot(sb_slot(info->sb, i), c, &tot);
    history_next = (history_next + 1) % (PAGE_WINDOW_S + 1);
    if (history_len < PAGE_WINDOW_S + 1)
        history_len++;
}

/* past: the oldest moment of the history, if it is at least half a second
 * before now; else NULL. */
static const struct counts *
past(int64_t now)
{
    int oldest = history_len < PAGE_WINDOW_S + 1 ? 0 : history_next;
    const struct counts *c = &history[oldest];

    return history_len > 0 && now - c->t_ns >= 500 * MS ? c : NULL;
}

/* --- a snapshot of the scoreboard ---------------------------------------- */

/* A worker, as the page shows it. */
struct wrow {
    int slot;
    struct sb_stats st;
    struct sb_db_view db;
    struct sb_totals tot; /* the slot's, its past workers' included */
};

struct snapshot {
    struct sb_pool pool;
    time_t now;
    int64_t now_ns;
    unsigned queue, queue_len, max_queue;
    int total, idle, active;
    int servable, stuck;          /* workers that can take a request */
    int db_up, db_down, db_none;  /* workers, by what they say of it */
    int64_t db_up_ms, db_down_ms; /* the newest report of each, or 0 */
    const char *db_error;         /* the newest failure said, or NULL */
    struct sb_totals tot;         /* the pool's, since it started */
    struct counts c;              /* now */
    const struct counts *past;    /* PAGE_WINDOW_S ago or so, or NULL */
    struct sb_hist phase[SB_PHASES];
    int n;
    struct wrow *w;      /* the workers, n of them, by slot */
    struct pm_view size; /* the pool's size (pm.h) */
    char size_line[256]; /* and in one line */
};

/* stuck_ns: serving one request this long, a worker counts as stuck: 10 s,
 * or half the pool's request time limit when that is less. */
static int64_t
stuck_ns(const struct snapshot *s)
{
    int64_t limit = s->pool.request_limit_ms * MS / 2;

    return limit > 0 && limit < 10000 * MS ? limit : 10000 * MS;
}

/* tally: w into the snapshot's counts of workers. */
static void
tally(struct snapshot *s, const struct wrow *w)
{
    int busy = sb_busy(w->st.state);

    /* php-fpm's sum: idle + active = total; one starting or leaving
     * serves no request. */
    if (busy)
        s->active++;
    else
        s->idle++;
    if (busy && w->st.busy_since_ns > 0 &&
        s->now_ns - w->st.busy_since_ns >= stuck_ns(s))
        s->stuck++;
    else if (busy || w->st.state == SB_IDLE || w->st.state == SB_READING)
        s->servable++;
    if (w->db.state == SB_DB_UP)
        s->db_up++;
    else if (w->db.state == SB_DB_DOWN)
        s->db_down++;
    else
        s->db_none++;
    if (w->db.state == SB_DB_UP && w->db.since_ms > s->db_up_ms)
        s->db_up_ms = w->db.since_ms;
    if (w->db.state == SB_DB_DOWN && w->db.since_ms >= s->db_down_ms) {
        s->db_down_ms = w->db.since_ms;
        s->db_error = w->db.error;
    }
}

/* size_view: the pool's size as the supervisor last reported it (a
 * static pool of the workers seen without a report), the current count
 * the workers seen ("total processes"). */
static void
size_view(const struct status_info *info, struct snapshot *s)
{
    if (info->size != NULL) {
        pm_report_read(info->size, &s->size);
    } else {
        s->size.mode = PM_STATIC;
        s->size.target = s->total;
    }
    s->size.current = s->total;
    pm_report_line(&s->size, (int64_t)s->now, s->size_line,
                   sizeof(s->size_line));
}

static int
snapshot(const struct status_info *info, struct snapshot *s)
{
    int i, j, nslots = sb_nslots(info->sb);
    const struct sb_slot *slot;
    struct sb_totals tot;
    struct sb_hist h;
    struct wrow *w;

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
    s->c.t_ns = s->now_ns;
    s->past = past(s->now_ns);
    for (i = 0; i < nslots; i++) {
        slot = sb_slot(info->sb, i);
        /* Every slot counts for the totals: an empty one holds its past
         * workers'. */
        count_slot(slot, &s->c, &tot);
        s->tot.accepted += tot.accepted;
        s->tot.reconnects += tot.reconnects;
        s->tot.slow += tot.slow;
        for (j = 0; j < 5; j++)
            s->tot.status[j] += tot.status[j];
        for (j = 0; j < SB_PHASES; j++) {
            s->tot.phase_ns[j] += tot.phase_ns[j];
            sb_phase_hist(slot, (enum sb_phase)j, &h);
            hist_add(&s->phase[j], &h);
        }
        w = &s->w[s->n];
        sb_stats(slot, &w->st);
        if (w->st.state == SB_EMPTY || w->st.pid <= 0)
            continue;
        w->slot = i;
        w->tot = tot;
        sb_db(slot, &w->db);
        s->n++;
        s->total++;
        tally(s, w);
    }
    s->tot.requests = s->c.requests;
    size_view(info, s);
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

/* --- what follows from it ----------------------------------------------- */

/* rate: counter now, per second over the window; -1 when unknown. */
static double
rate(const struct snapshot *s, uint64_t now, uint64_t then)
{
    if (s->past == NULL || now < then)
        return -1;
    return (double)(now - then) * 1e9 / (double)(s->now_ns - s->past->t_ns);
}

static double
req_rate(const struct snapshot *s)
{
    return rate(s, s->c.requests, s->past ? s->past->requests : 0);
}

static double
err_rate(const struct snapshot *s)
{
    return rate(s, s->c.errors, s->past ? s->past->errors : 0);
}

/*
 * quantile: the q-quantile (0 < q < 1) of h's durations, in µs, as
 * Prometheus' histogram_quantile() estimates it: linearly within its
 * bucket, the last finite bound for the +Inf one.  -1 when h is empty.
 */
static double
quantile(const struct sb_hist *h, double q)
{
    uint64_t total = 0, below = 0;
    double rank, lo;
    int i;

    for (i = 0; i < SB_BUCKETS; i++)
        total += h->bucket[i];
    if (total == 0)
        return -1;
    rank = q * (double)total;
    for (i = 0; i < SB_BUCKETS - 1; i++) {
        if ((double)(below + h->bucket[i]) >= rank && h->bucket[i] > 0) {
            lo = i > 0 ? sb_bucket_us[i - 1] : 0;
            return lo + (sb_bucket_us[i] - lo) * (rank - (double)below) /
                            (double)h->bucket[i];
        }
        below += h->bucket[i];
    }
    return sb_bucket_us[SB_BUCKETS - 2];
}

/* recent: the route histogram r over the window (since s->past), or
 * since the start when there is no history yet. */
static void
recent(const struct snapshot *s, const struct route_agg *r, struct sb_hist *out)
{
    const struct counts *p = s->past;
    int i, j;

    *out = r->h;
    for (i = 0; p != NULL && i < p->nroutes; i++) {
        if (strcmp(p->routes[i].name, r->name) != 0)
            continue;
        for (j = 0; j < SB_BUCKETS; j++)
            out->bucket[j] -= out->bucket[j] >= p->routes[i].h.bucket[j]
                                  ? p->routes[i].h.bucket[j]
                                  : out->bucket[j];
        out->sum_us -= out->sum_us >= p->routes[i].h.sum_us
                           ? p->routes[i].h.sum_us
                           : out->sum_us;
    }
}

/* recent_all: every route's, summed. */
static void
recent_all(const struct snapshot *s, struct sb_hist *out)
{
    struct sb_hist h;
    int i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < s->c.nroutes; i++) {
        recent(s, &s->c.routes[i], &h);
        hist_add(out, &h);
    }
}

/*
 * db_ok: whether the database answers, as the workers' newest word on it
 * says: a worker's "up" holds as of its connection, and a worker idle
 * since learns of a stop only at its next query, so a failure newer than
 * every success wins.  No word at all (another responder, or none tried
 * yet) is no failure.
 */
static int
db_ok(const struct snapshot *s)
{
    return s->db_down == 0 || (s->db_up > 0 && s->db_up_ms > s->db_down_ms);
}

/*
 * health: the health answer's line into line (cap bytes): whether the
 * pool can serve (a worker alive and not stuck) and whether its database
 * is reachable (db_ok).  Results: the HTTP status, 200 or 503.
 */
static int
health(const struct snapshot *s, char *line, size_t cap)
{
    int ok = s->servable > 0 && db_ok(s);
    size_t n;

    n = (size_t)snprintf(line, cap, "%s: %d of %d workers can serve",
                         ok ? "ok" : "fail", s->servable, s->total);
    if (s->stuck > 0 && n < cap)
        n += (size_t)snprintf(line + n, cap - n, " (%d stuck)", s->stuck);
    if (n >= cap)
        return ok ? 200 : 503;
    if (s->db_up > 0 && db_ok(s))
        snprintf(line + n, cap - n, "; database up (%d of %d connected)",
                 s->db_up, s->total);
    else if (s->db_down > 0)
        snprintf(line + n, cap - n, "; database down: %s",
                 s->db_error != NULL && s->db_error[0] != '\0' ? s->db_error
                                                               : "?");
    else
        snprintf(line + n, cap - n, "; database not reported");
    return ok ? 200 : 503;
}

/* --- escaping --------------------------------------------------------------
 */

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

/*
 * prom_label: s as a Prometheus label value, into out (cap bytes): the
 * text format escapes backslash, double quote and newline, and nothing
 * else; a byte past ASCII, which need not be UTF-8 as the format wants,
 * becomes '?'.  The value is cut, never in the middle of an escape, if it
 * does not fit.  The pool's name is checked at start-up to need none of
 * it; this page does not count on that.
 */
static const char *
prom_label(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    for (; *s != '\0' && n + 3 <= cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n')
            out[n++] = '\\';
        out[n++] = *s == '\n' ? 'n' : (unsigned char)*s >= 0x80 ? '?' : *s;
    }
    out[n] = '\0';
    return out;
}

/*
 * html_str: s as HTML text or an attribute's value: the five characters
 * that mean something in HTML as entities, control characters and bytes
 * past ASCII (not known to be UTF-8) as U+FFFD, so that nothing a worker
 * wrote becomes markup.
 */
static void
html_str(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        switch (c) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            if (c < 0x20 || c >= 0x7f)
                fputs("&#xfffd;", f);
            else
                fputc(c, f);
        }
    }
}

/* clf_time: t as php-fpm prints a time: 02/Dec/2026:04:27:00 +0000. */
static const char *
clf_time(int64_t t, char *out, size_t cap)
{
    struct tm tm;

    gmtime_r(&(time_t){(time_t)t}, &tm);
    strftime(out, cap, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    return out;
}

/* --- text: php-fpm's page --------------------------------------------------
 */

/* text_rate: a rate, or "-" when the history cannot tell yet. */
static void
text_rate(FILE *f, const char *name, double r)
{
    if (r < 0)
        fprintf(f, "%-22s-\n", name);
    else
        fprintf(f, "%-22s%.1f\n", name, r);
}

/* text_db: the database lines of a worker's block. */
static void
text_db(FILE *f, const struct wrow *w)
{
    char when[64];

    fprintf(f,
            "db state:             %s\n"
            "db since:             %s\n"
            "db attempts:          %llu\n"
            "db last error:        ",
            db_names[w->db.state],
            w->db.since_unix > 0 ? clf_time(w->db.since_unix, when, 64) : "-",
            (unsigned long long)w->db.attempts);
    text_str(f, w->db.error);
    fputc('\n', f);
}

/* text_worker: one worker's block of the full text page. */
static void
text_worker(FILE *f, const struct snapshot *s, const struct wrow *r)
{
    const struct sb_stats *w = &r->st;

    fprintf(f,
            "\n************************\n"
            "slot:                 %d\n"
            "pid:                  %ld\n"
            "state:                %s\n"
            "start since:          %lld\n"
            "requests:             %llu\n"
            "fastcgi connections:  %llu\n"
            "route:                ",
            r->slot, (long)w->pid, state_names[w->state],
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
            "slow requests:        %llu\n",
            (unsigned long long)duration_us(s, w), w->last_us[0], w->last_us[1],
            w->last_us[2], w->last_us[3], (unsigned long long)w->status[0],
            (unsigned long long)w->status[1], (unsigned long long)w->status[2],
            (unsigned long long)w->status[3], (unsigned long long)w->status[4],
            (unsigned long long)w->reconnects, (unsigned long long)w->slow);
    text_db(f, r);
    fprintf(f, "rss kb:               %ld\n", rss_kb(w->pid));
}

static void
text(FILE *f, const struct status_info *info, const struct snapshot *s,
     int full)
{
    char when[64], line[512];
    int i, j;

    fputs("pool:                 ", f);
    text_str(f, info->pool);
    fprintf(f,
            "\n"
            "process manager:      %s\n"
            "pool size:            %s\n"
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
            "requests:             %llu\n"
            "fastcgi connections:  %llu\n",
            pm_mode_name(s->size.mode), s->size_line,
            clf_time(s->pool.started_unix, when, sizeof(when)),
            (long long)(s->now - (time_t)s->pool.started_unix),
            (unsigned long long)s->tot.requests, s->queue, s->max_queue,
            s->queue_len, s->idle, s->active, s->total, s->pool.max_active,
            (unsigned long long)s->pool.max_children_reached,
            (unsigned long long)s->tot.slow,
            (unsigned long long)s->tot.requests,
            (unsigned long long)s->tot.accepted);
    text_rate(f, "requests per second:", req_rate(s));
    text_rate(f, "errors per second:", err_rate(s));
    for (j = 0; j < SB_PHASES; j++)
        fprintf(f, "%s seconds:%*s%.6f\n", phase_names[j],
                (int)(13 - strlen(phase_names[j])), "",
                (double)s->tot.phase_ns[j] / 1e9);
    for (j = 0; j < 5; j++)
        fprintf(f, "responses %dxx:        %llu\n", j + 1,
                (unsigned long long)s->tot.status[j]);
    fprintf(f, "db reconnects:        %llu\n",
            (unsigned long long)s->tot.reconnects);
    fprintf(f, "version:              %s\n", tfb_version);
    health(s, line, sizeof(line));
    fputs("health:               ", f);
    text_str(f, line);
    fputc('\n', f);
    if (!full)
        return;
    for (i = 0; i < s->n; i++)
        text_worker(f, s, &s->w[i]);
}

/* --- JSON ---------------------------------------------------------------- */

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

/* json_rate: ,"name":rate, null when unknown. */
static void
json_rate(FILE *f, const char *name, double r)
{
    if (r < 0)
        fprintf(f, ",\"%s\":null", name);
    else
        fprintf(f, ",\"%s\":%.3f", name, r);
}

static void
json_worker(FILE *f, const struct snapshot *s, const struct wrow *r)
{
    const struct sb_stats *w = &r->st;
    int j;

    fprintf(f,
            "{\"slot\":%d,\"pid\":%ld,\"state\":\"%s\",\"start since\":%lld,"
            "\"requests\":%llu,\"fastcgi connections\":%llu,\"route\":",
            r->slot, (long)w->pid, state_names[w->state],
            (long long)((s->now_ns - w->started_ns) / 1000000000),
            (unsigned long long)w->requests, (unsigned long long)w->accepted);
    json_str(f, w->route);
    fprintf(f, ",\"request duration\":%llu,\"last request us\":{",
            (unsigned long long)duration_us(s, w));
    for (j = 0; j < SB_PHASES; j++)
        fprintf(f, "%s\"%s\":%u", j ? "," : "", phase_names[j], w->last_us[j]);
    fputc('}', f);
    json_counts(f, w->phase_ns, w->status);
    fprintf(f,
            ",\"db reconnects\":%llu,\"slow requests\":%llu,\"db state\":"
            "\"%s\",\"db since\":",
            (unsigned long long)w->reconnects, (unsigned long long)w->slow,
            db_names[r->db.state]);
    if (r->db.since_unix > 0)
        fprintf(f, "%lld", (long long)r->db.since_unix);
    else
        fputs("null", f);
    fprintf(f, ",\"db attempts\":%llu,\"db last error\":",
            (unsigned long long)r->db.attempts);
    json_str(f, r->db.error);
    fprintf(f, ",\"rss kb\":%ld}", rss_kb(w->pid));
}

static void
json(FILE *f, const struct status_info *info, const struct snapshot *s,
     int full)
{
    char line[512];
    int i;

    fprintf(f, "{\"pool\":");
    json_str(f, info->pool);
    fprintf(f, ",\"process manager\":\"%s\",\"pool size\":",
            pm_mode_name(s->size.mode));
    json_str(f, s->size_line);
    fprintf(f, ",\"target processes\":%d", s->size.target);
    fprintf(f,
            ",\"start time\":%lld,"
            "\"start since\":%lld,\"accepted conn\":%llu,"
            "\"listen queue\":%u,\"max listen queue\":%u,"
            "\"listen queue len\":%u,\"idle processes\":%d,"
            "\"active processes\":%d,\"total processes\":%d,"
            "\"max active processes\":%d,\"max children reached\":%llu,"
            "\"slow requests\":%llu,\"requests\":%llu,"
            "\"fastcgi connections\":%llu,\"db reconnects\":%llu",
            (long long)s->pool.started_unix,
            (long long)(s->now - (time_t)s->pool.started_unix),
            (unsigned long long)s->tot.requests, s->queue, s->max_queue,
            s->queue_len, s->idle, s->active, s->total, s->pool.max_active,
            (unsigned long long)s->pool.max_children_reached,
            (unsigned long long)s->tot.slow,
            (unsigned long long)s->tot.requests,
            (unsigned long long)s->tot.accepted,
            (unsigned long long)s->tot.reconnects);
    fprintf(f, ",\"version\":\"%s\"", tfb_version);
    json_rate(f, "requests per second", req_rate(s));
    json_rate(f, "errors per second", err_rate(s));
    json_counts(f, s->tot.phase_ns, s->tot.status);
    fprintf(f, ",\"database\":{\"up\":%d,\"down\":%d,\"none\":%d}", s->db_up,
            s->db_down, s->db_none);
    fprintf(f, ",\"health\":%s,\"health line\":",
            health(s, line, sizeof(line)) == 200 ? "true" : "false");
    json_str(f, line);
    if (full) {
        fprintf(f, ",\"processes\":[");
        for (i = 0; i < s->n; i++) {
            fputs(i ? "," : "", f);
            json_worker(f, s, &s->w[i]);
        }
        fputc(']', f);
    }
    fprintf(f, "}\n");
}

/* --- Prometheus and OpenMetrics ------------------------------------------- */

/*
 * The two text formats differ little: OpenMetrics names a counter's
 * family without the "_total" its samples keep, and ends with "# EOF".
 * Every metric carries the pool's name; per worker (with ?full) the label
 * is its slot, not its pid: a slot's series goes on across recycles, as
 * its counters do (sb_totals).
 */
struct prom {
    FILE *f;
    int om;        /* OpenMetrics */
    const char *p; /* the pool's name, escaped */
};

/* family: a metric's HELP and TYPE lines. */
static void
family(const struct prom *pr, const char *name, const char *type,
       const char *help)
{
    int n = (int)strlen(name);

    if (pr->om && strcmp(type, "counter") == 0 && n > 6 &&
        strcmp(name + n - 6, "_total") == 0)
        n -= 6;
    fprintf(pr->f, "# HELP %.*s %s\n# TYPE %.*s %s\n", n, name, help, n, name,
            type);
}

/* one: a family of one sample, labelled with the pool alone. */
static void
one(const struct prom *pr, const char *name, const char *type, const char *help,
    unsigned long long v)
{
    family(pr, name, type, help);
    fprintf(pr->f, "%s{pool=\"%s\"} %llu\n", name, pr->p, v);
}

/* histogram: h's samples (cumulative buckets, _sum in seconds, _count),
 * labelled with the pool and label="value". */
static void
histogram(const struct prom *pr, const char *name, const char *label,
          const char *value, const struct sb_hist *h)
{
    uint64_t cum = 0;
    int i;

    for (i = 0; i < SB_BUCKETS; i++) {
        cum += h->bucket[i];
        fprintf(pr->f, "%s_bucket{pool=\"%s\",%s=\"%s\",le=\"%s\"} %llu\n",
                name, pr->p, label, value, sb_bucket_le[i],
                (unsigned long long)cum);
    }
    fprintf(pr->f, "%s_sum{pool=\"%s\",%s=\"%s\"} %.6f\n", name, pr->p, label,
            value, (double)h->sum_us / 1e6);
    fprintf(pr->f, "%s_count{pool=\"%s\",%s=\"%s\"} %llu\n", name, pr->p, label,
            value, (unsigned long long)cum);
}

static void
prom_pool(const struct prom *pr, const struct snapshot *s)
{
    FILE *f = pr->f;
    int j;

    one(pr, "tfb_pool_start_time_seconds", "gauge",
        "When the pool started, in seconds since the epoch.",
        (unsigned long long)s->pool.started_unix);
    family(pr, "tfb_build_info", "gauge", "The pool's version, as a label.");
    fprintf(f, "tfb_build_info{pool=\"%s\",version=\"%s\"} 1\n", pr->p,
            tfb_version);
    one(pr, "tfb_pool_accepted_connections_total", "counter",
        "Requests the pool accepted (php-fpm's accepted conn).",
        (unsigned long long)s->tot.requests);
    one(pr, "tfb_pool_fastcgi_connections_total", "counter",
        "FastCGI connections the workers accepted.",
        (unsigned long long)s->tot.accepted);
    one(pr, "tfb_pool_listen_queue", "gauge",
        "Connections waiting in the listen queue.", s->queue);
    one(pr, "tfb_pool_max_listen_queue", "gauge",
        "The deepest listen queue seen since the status process started.",
        s->max_queue);
    one(pr, "tfb_pool_listen_queue_length", "gauge",
        "The length of the listen queue.", s->queue_len);
    family(pr, "tfb_pool_processes", "gauge", "Workers, by state.");
    fprintf(f, "tfb_pool_processes{pool=\"%s\",state=\"idle\"} %d\n", pr->p,
            s->idle);
    fprintf(f, "tfb_pool_processes{pool=\"%s\",state=\"active\"} %d\n", pr->p,
            s->active);
    one(pr, "tfb_pool_max_active_processes", "gauge",
        "The most workers serving at once since the pool started.",
        (unsigned long long)s->pool.max_active);
    one(pr, "tfb_pool_max_children_reached_total", "counter",
        "Times a worker more was asked for at --max-workers.",
        (unsigned long long)s->pool.max_children_reached);
    one(pr, "tfb_pool_slow_requests_total", "counter",
        "Requests over the slow-request threshold.",
        (unsigned long long)s->tot.slow);
    one(pr, "tfb_pool_requests_total", "counter", "Requests served.",
        (unsigned long long)s->tot.requests);
    family(pr, "tfb_pool_responses_total", "counter",
           "Responses, by HTTP status class.");
    for (j = 0; j < 5; j++)
        fprintf(f,
                "tfb_pool_responses_total{pool=\"%s\",class=\"%dxx\"} %llu\n",
                pr->p, j + 1, (unsigned long long)s->tot.status[j]);
    family(pr, "tfb_pool_phase_seconds_total", "counter",
           "Time requests spent in each phase.");
    for (j = 0; j < SB_PHASES; j++)
        fprintf(f,
                "tfb_pool_phase_seconds_total{pool=\"%s\",phase=\"%s\"} %.6f\n",
                pr->p, phase_names[j], (double)s->tot.phase_ns[j] / 1e9);
    one(pr, "tfb_pool_db_reconnects_total", "counter",
        "Database connections made again.",
        (unsigned long long)s->tot.reconnects);
}

static void
prom_health(const struct prom *pr, const struct snapshot *s)
{
    char line[512];
    int j;

    family(pr, "tfb_pool_database_workers", "gauge",
           "Workers, by what they last said of their database connection.");
    for (j = 0; j < 3; j++)
        fprintf(pr->f,
                "tfb_pool_database_workers{pool=\"%s\",state=\"%s\"} %d\n",
                pr->p, db_names[j],
                j == SB_DB_UP     ? s->db_up
                : j == SB_DB_DOWN ? s->db_down
                                  : s->db_none);
    one(pr, "tfb_pool_healthy", "gauge",
        "1 when the pool can serve and its database answers (the health "
        "answer's 200), else 0.",
        health(s, line, sizeof(line)) == 200);
}

/* prom_histograms: the request durations by route, then by phase. */
static void
prom_histograms(const struct prom *pr, const struct snapshot *s)
{
    char route[2 * SB_LABEL_MAX + 1];
    int i;

    if (s->c.nroutes > 0) {
        family(pr, "tfb_request_duration_seconds", "histogram",
               "Requests' durations, from their first byte to their last "
               "written, by route.");
        for (i = 0; i < s->c.nroutes; i++)
            histogram(pr, "tfb_request_duration_seconds", "route",
                      prom_label(s->c.routes[i].name, route, sizeof(route)),
                      &s->c.routes[i].h);
    }
    family(pr, "tfb_phase_duration_seconds", "histogram",
           "Each phase's duration in a request.");
    for (i = 0; i < SB_PHASES; i++)
        histogram(pr, "tfb_phase_duration_seconds", "phase", phase_names[i],
                  &s->phase[i]);
}

/* What a worker's series say, each from its row. */
static long long
w_pid(const struct wrow *w)
{
    return w->st.pid;
}

static long long
w_requests(const struct wrow *w)
{
    return (long long)w->tot.requests;
}

static long long
w_rss(const struct wrow *w)
{
    return rss_kb(w->st.pid) * 1024LL;
}

static long long
w_db_up(const struct wrow *w)
{
    return w->db.state == SB_DB_UP ? 1 : w->db.state == SB_DB_DOWN ? 0 : -1;
}

static long long
w_db_since(const struct wrow *w)
{
    return w->db.since_unix;
}

static long long
w_db_attempts(const struct wrow *w)
{
    return (long long)w->db.attempts;
}

static const struct {
    const char *name, *type, *help;
    long long (*value)(const struct wrow *);
} worker_series[] = {
    {"tfb_worker_pid", "gauge", "The pid of the worker in each slot.", w_pid},
    {"tfb_worker_requests_total", "counter",
     "Requests served in each slot, by every worker it has had.", w_requests},
    {"tfb_worker_resident_bytes", "gauge", "Each worker's resident memory.",
     w_rss},
    {"tfb_worker_database_up", "gauge",
     "1 when the worker's database connection is up, 0 when down, -1 when "
     "it has said nothing of it.",
     w_db_up},
    {"tfb_worker_database_since_seconds", "gauge",
     "When the worker's database connection last went up or down, in "
     "seconds since the epoch (0: never).",
     w_db_since},
    {"tfb_worker_database_attempts_total", "counter",
     "Database connections the worker tried.", w_db_attempts},
};

/* prom_workers: ?full: a series per worker, labelled by its slot. */
static void
prom_workers(const struct prom *pr, const struct snapshot *s)
{
    char err[2 * SB_DB_ERROR_MAX + 1];
    size_t k;
    int i, errors = 0;

    for (k = 0; k < sizeof(worker_series) / sizeof(worker_series[0]); k++) {
        family(pr, worker_series[k].name, worker_series[k].type,
               worker_series[k].help);
        for (i = 0; i < s->n; i++)
            fprintf(pr->f, "%s{pool=\"%s\",slot=\"%d\"} %lld\n",
                    worker_series[k].name, pr->p, s->w[i].slot,
                    worker_series[k].value(&s->w[i]));
    }
    for (i = 0; i < s->n; i++)
        errors += s->w[i].db.error[0] != '\0';
    if (errors == 0)
        return;
    family(pr, "tfb_worker_database_last_error", "gauge",
           "1, with the worker's last database error as a label.");
    for (i = 0; i < s->n; i++)
        if (s->w[i].db.error[0] != '\0')
            fprintf(pr->f,
                    "tfb_worker_database_last_error{pool=\"%s\",slot=\"%d\","
                    "error=\"%s\"} 1\n",
                    pr->p, s->w[i].slot,
                    prom_label(s->w[i].db.error, err, sizeof(err)));
}

/* prom_size: the target, with the current count and the last change's
 * reason as labels: one line, as the text page's "pool size". */
static void
prom_size(const struct prom *pr, const struct snapshot *s)
{
    char why[2 * PM_WHY_MAX + 1];

    family(pr, "tfb_pool_target_processes", "gauge",
           "The workers the pool wants; current: those serving, why: the "
           "last change's reason.");
    fprintf(pr->f,
            "tfb_pool_target_processes{pool=\"%s\",pm=\"%s\",current=\"%d\","
            "why=\"%s\"} %d\n",
            pr->p, pm_mode_name(s->size.mode), s->size.current,
            prom_label(s->size.changed_unix > 0 ? s->size.why : "", why,
                       sizeof(why)),
            s->size.target);
}

static void
prometheus(FILE *f, const struct status_info *info, const struct snapshot *s,
           int full, int om)
{
    char pool[2 * 64 + 1];
    struct prom pr = {f, om, prom_label(info->pool, pool, sizeof(pool))};

    prom_pool(&pr, s);
    prom_size(&pr, s);
    prom_health(&pr, s);
    prom_histograms(&pr, s);
    if (full && s->n > 0)
        prom_workers(&pr, s);
    if (om)
        fputs("# EOF\n", f);
}

/* --- HTML ---------------------------------------------------------------- */

/*
 * The page refreshes itself: a script (served apart, as ?js, so that the
 * page's Content-Security-Policy can refuse every inline script) fetches
 * it again every 2 s and swaps its #page in; without scripts, a meta
 * refresh in <noscript> reloads it.  The script also says, in #live,
 * that it runs.
 */
static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width\">\n"
    "<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>\n"
    "<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}\n"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}\n"
    "td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}\n"
    "th{background:#f3f3f3}td.l,th.l{text-align:left}\n"
    ".ok{color:#175e17}.fail{color:#a11;font-weight:bold}\n"
    ".up{color:#175e17}.down{color:#a11}#live{color:#777}\n"
    "</style>\n";

static const char html_script[] =
    "(function () {\n"
    "  var every = 2000, n = 0, live = document.getElementById('live');\n"
    "  function say(t) { live.textContent = t; }\n"
    "  function tick() {\n"
    "    fetch(location.href, {cache: 'no-store'}).then(function (r) {\n"
    "      if (!r.ok) throw new Error('HTTP ' + r.status);\n"
    "      return r.text();\n"
    "    }).then(function (t) {\n"
    "      var d = new DOMParser().parseFromString(t, 'text/html');\n"
    "      document.getElementById('page').replaceWith("
    "d.getElementById('page'));\n"
    "      say('live: updated ' + (++n) + ' times, every 2 s');\n"
    "    }).catch(function (e) {\n"
    "      say('live: ' + e.message + '; trying again');\n"
    "    }).then(function () { setTimeout(tick, every); });\n"
    "  }\n"
    "  say('live: updated every 2 s');\n"
    "  setTimeout(tick, every);\n"
    "})();\n";

/* html_ms: µs as milliseconds, or "-" when unknown (< 0). */
static void
html_ms(FILE *f, double us)
{
    if (us < 0)
        fputs("<td>-</td>", f);
    else
        fprintf(f, "<td>%.3f</td>", us / 1000);
}

static void
html_rate(FILE *f, double r)
{
    if (r < 0)
        fputs("<td>-</td>", f);
    else
        fprintf(f, "<td>%.1f</td>", r);
}

static void
html_summary(FILE *f, const struct snapshot *s)
{
    struct sb_hist all;
    char line[512];
    int code = health(s, line, sizeof(line));

    recent_all(s, &all);
    fprintf(f, "<p id=\"health\" class=\"%s\">", code == 200 ? "ok" : "fail");
    html_str(f, line);
    fputs("</p>\n<table id=\"summary\"><tr><th>requests/s</th><th>errors/s"
          "</th><th>p50 ms</th><th>p99 ms</th><th>requests</th><th>5xx</th>"
          "<th>workers</th><th>idle</th><th>active</th><th>listen queue</th>"
          "<th>database</th></tr>\n<tr>",
          f);
    html_rate(f, req_rate(s));
    html_rate(f, err_rate(s));
    html_ms(f, quantile(&all, 0.5));
    html_ms(f, quantile(&all, 0.99));
    fprintf(f,
            "<td id=\"requests\">%llu</td><td>%llu</td><td id=\"workers\">%d"
            "</td><td>%d</td><td>%d</td><td>%u (max %u)</td>"
            "<td>%d up, %d down</td></tr></table>\n",
            (unsigned long long)s->tot.requests,
            (unsigned long long)s->tot.status[4], s->total, s->idle, s->active,
            s->queue, s->max_queue, s->db_up, s->db_down);
}

static void
html_routes(FILE *f, const struct snapshot *s)
{
    const struct counts *p = s->past;
    uint64_t n, then;
    struct sb_hist h;
    int i, j;

    fprintf(f,
            "<h2>Routes</h2>\n<p>Rates and quantiles over the last %d s"
            " (since the start until then).</p>\n<table id=\"routes\">"
            "<tr><th class=\"l\">route</th><th>requests</th><th>requests/s"
            "</th><th>p50 ms</th><th>p99 ms</th></tr>\n",
            PAGE_WINDOW_S);
    for (i = 0; i < s->c.nroutes; i++) {
        const struct route_agg *r = &s->c.routes[i];

        n = then = 0;
        for (j = 0; j < SB_BUCKETS; j++)
            n += r->h.bucket[j];
        recent(s, r, &h);
        for (j = 0; j < SB_BUCKETS; j++)
            then += h.bucket[j];
        fputs("<tr class=\"route\"><td class=\"l\">", f);
        html_str(f, r->name);
        fprintf(f, "</td><td>%llu</td>", (unsigned long long)n);
        html_rate(f, p != NULL
                         ? (double)then * 1e9 / (double)(s->now_ns - p->t_ns)
                         : -1);
        html_ms(f, quantile(&h, 0.5));
        html_ms(f, quantile(&h, 0.99));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void
html_worker(FILE *f, const struct snapshot *s, const struct wrow *w)
{
    char when[64];

    fprintf(f,
            "<tr class=\"worker\" data-slot=\"%d\" data-pid=\"%ld\">"
            "<td>%d</td><td class=\"pid\">%ld</td>"
            "<td class=\"state l\">%s</td><td class=\"route l\">",
            w->slot, (long)w->st.pid, w->slot, (long)w->st.pid,
            state_names[w->st.state]);
    html_str(f, w->st.route);
    fprintf(f,
            "</td><td>%.3f</td><td class=\"requests\">%llu</td>"
            "<td class=\"db l %s\">%s</td><td class=\"l\">%s</td>"
            "<td>%llu</td><td class=\"l\">",
            (double)duration_us(s, &w->st) / 1000,
            (unsigned long long)w->st.requests, db_names[w->db.state],
            db_names[w->db.state],
            w->db.since_unix > 0 ? clf_time(w->db.since_unix, when, 64) : "-",
            (unsigned long long)w->db.attempts);
    html_str(f, w->db.error);
    fprintf(f, "</td><td>%.1f</td></tr>\n", (double)rss_kb(w->st.pid) / 1024);
}

static void
html(FILE *f, const struct status_info *info, const struct snapshot *s)
{
    char when[64];
    int i;

    fputs(html_head, f);
    fputs("<title>", f);
    html_str(f, info->pool);
    fputs(" status</title></head>\n<body>\n<div id=\"page\">\n<h1>Pool ", f);
    html_str(f, info->pool);
    fprintf(f, "</h1>\n<p>Started %s, %lld s ago.</p>\n",
            clf_time(s->pool.started_unix, when, sizeof(when)),
            (long long)(s->now - (time_t)s->pool.started_unix));
    html_summary(f, s);
    html_routes(f, s);
    fputs("<h2>Workers</h2>\n<table id=\"workers-table\"><tr><th>slot</th>"
          "<th>pid</th><th class=\"l\">state</th><th class=\"l\">route</th>"
          "<th>for ms</th><th>requests</th><th class=\"l\">database</th>"
          "<th class=\"l\">since</th><th>attempts</th>"
          "<th class=\"l\">last error</th><th>RSS MiB</th></tr>\n",
          f);
    for (i = 0; i < s->n; i++)
        html_worker(f, s, &s->w[i]);
    fputs("</table>\n</div>\n<p id=\"live\">reloading every 2 s</p>\n"
          "<script src=\"?js\"></script>\n</body></html>\n",
          f);
}

/* --- the compact view: tfb-spawn status --watch ----------------------------
 */

/*
 * Five lines of the pool, then its workers two to a line: 32 workers fit
 * a terminal of 80 columns and 24 lines.
 */
static const char *const top_states[] = {
    "-", "start", "idle", "busy", "exit", "read", "db", "app", "write"};

/* text_cut: s escaped as text_str does, cut to at most max columns. */
static void
text_cut(FILE *f, const char *s, int max)
{
    char one[8];
    int n = 0, k;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '\\' || c < 0x20 || c >= 0x7f)
            k = snprintf(one, sizeof(one), c == '\\' ? "\\\\" : "\\x%02x", c);
        else
            k = snprintf(one, sizeof(one), "%c", c);
        if (n + k > max)
            break;
        fputs(one, f);
        n += k;
    }
    fprintf(f, "%*s", max - n, "");
}

/* count6: n in at most 6 columns: 123456, 1234.5k, 12.3M. */
static const char *
count6(uint64_t n, char *out)
{
    if (n < 1000000)
        snprintf(out, 8, "%llu", (unsigned long long)n);
    else if (n < 1000000000)
        snprintf(out, 8, "%.1fM", (double)n / 1e6);
    else
        snprintf(out, 8, "%.1fG", (double)n / 1e9);
    return out;
}

static void
top_head(FILE *f, const struct status_info *info, const struct snapshot *s)
{
    long long up = (long long)(s->now - (time_t)s->pool.started_unix);
    struct sb_hist all;
    char line[512], rq[16], er[16];
    double r = req_rate(s), e = err_rate(s);
    int code = health(s, line, sizeof(line));

    recent_all(s, &all);
    fputs("pool ", f);
    text_cut(f, info->pool, 16);
    fprintf(f,
            "  up %lld:%02lld:%02lld  %s  workers %d, %d can serve, "
            "%d stuck\n",
            up / 3600, up / 60 % 60, up % 60, code == 200 ? "OK  " : "FAIL",
            s->total, s->servable, s->stuck);
    if (r < 0)
        snprintf(rq, sizeof(rq), "-");
    else
        snprintf(rq, sizeof(rq), "%.1f", r);
    if (e < 0)
        snprintf(er, sizeof(er), "-");
    else
        snprintf(er, sizeof(er), "%.1f", e);
    fprintf(f,
            "req/s %-9s err/s %-7s p50 %8.3f ms  p99 %8.3f ms  (last %d s)\n",
            rq, er, quantile(&all, 0.5) / 1000, quantile(&all, 0.99) / 1000,
            PAGE_WINDOW_S);
    fprintf(f,
            "requests %-10llu 4xx %-8llu 5xx %-8llu slow %-7llu queue %u "
            "(max %u)\n",
            (unsigned long long)s->tot.requests,
            (unsigned long long)s->tot.status[3],
            (unsigned long long)s->tot.status[4],
            (unsigned long long)s->tot.slow, s->queue, s->max_queue);
    fprintf(f, "database: %d up, %d down, %d not reported; %llu reconnects\n",
            s->db_up, s->db_down, s->db_none,
            (unsigned long long)s->tot.reconnects);
    fputs("last db error: ", f);
    text_cut(f, s->db_error != NULL && s->db_error[0] ? s->db_error : "-", 64);
    fputs("\n\n", f);
}

static void
top_worker(FILE *f, const struct wrow *w)
{
    char n[8];

    fprintf(f, "%4d %7ld %-5s %6s %-4s ", w->slot, (long)w->st.pid,
            top_states[w->st.state], count6(w->st.requests, n),
            db_names[w->db.state]);
    text_cut(f, w->st.route, 8);
}

static void
top(FILE *f, const struct status_info *info, const struct snapshot *s)
{
    static const char head[] = "slot     pid state   reqs db   route   ";
    int i, rows = (s->n + 1) / 2;

    top_head(f, info, s);
    fprintf(f, "%s  %s\n", head, s->n > 1 ? head : "");
    for (i = 0; i < rows; i++) {
        top_worker(f, &s->w[i]);
        if (i + rows < s->n) {
            fputs("  ", f);
            top_worker(f, &s->w[i + rows]);
        }
        fputc('\n', f);
    }
}

/* --- which page --------------------------------------------------------------
 */

/* The words a query may hold, and the format each asks for. */
static const struct {
    const char *word;
    enum status_format fmt;
} formats[] = {
    {"json", STATUS_JSON},
    {"html", STATUS_HTML},
    {"prometheus", STATUS_PROMETHEUS},
    {"openmetrics", STATUS_OPENMETRICS},
    {"top", STATUS_TOP},
    {"ping", STATUS_PING},
    {"js", STATUS_JS},
};

static const char known[] =
    "the status page knows: (nothing) for php-fpm's text, json, html, "
    "prometheus, openmetrics, top, ping; and full, for a block per worker "
    "(with text, json, prometheus and openmetrics)\n";

enum status_format
status_format_of(const char *query, const char *accept, int *full)
{
    enum status_format fmt = STATUS_TEXT;
    size_t len, i, n;
    int found;

    *full = 0;
    while (query != NULL && *query != '\0') {
        len = strcspn(query, "&");
        n = strcspn(query, "=");
        n = n < len ? n : len;
        found = n == 4 && strncmp(query, "full", 4) == 0;
        *full |= found;
        for (i = 0; !found && i < sizeof(formats) / sizeof(formats[0]); i++)
            if (strlen(formats[i].word) == n &&
                strncmp(query, formats[i].word, n) == 0) {
                /* Two formats at once: which?  Neither. */
                if (fmt != STATUS_TEXT && fmt != formats[i].fmt)
                    return STATUS_BAD;
                fmt = formats[i].fmt;
                found = 1;
            }
        if (!found && n > 0)
            return STATUS_BAD;
        query += len + (query[len] == '&');
    }
    if (fmt != STATUS_TEXT || accept == NULL)
        return fmt;
    /* A scraper says what it takes: OpenMetrics first if it does. */
    if (strstr(accept, "application/openmetrics-text") != NULL)
        return STATUS_OPENMETRICS;
    if (strstr(accept, "version=0.0.4") != NULL)
        return STATUS_PROMETHEUS;
    return STATUS_TEXT;
}

/* render_page: the page in fmt into f; its content type in *type.
 * Results: the HTTP status. */
static int
render_page(FILE *f, const struct status_info *info, const struct snapshot *s,
            enum status_format fmt, int full, const char **type)
{
    char line[512];
    int code = 200;

    *type = "text/plain; charset=utf-8";
    switch (fmt) {
    case STATUS_JSON:
        *type = "application/json";
        json(f, info, s, full);
        break;
    case STATUS_PROMETHEUS:
    case STATUS_OPENMETRICS:
        *type = fmt == STATUS_PROMETHEUS
                    ? "text/plain; version=0.0.4; charset=utf-8"
                    : "application/openmetrics-text; version=1.0.0; "
                      "charset=utf-8";
        prometheus(f, info, s, full, fmt == STATUS_OPENMETRICS);
        break;
    case STATUS_HTML:
        *type = "text/html; charset=utf-8";
        html(f, info, s);
        break;
    case STATUS_JS:
        *type = "text/javascript; charset=utf-8";
        fputs(html_script, f);
        break;
    case STATUS_TOP:
        top(f, info, s);
        break;
    case STATUS_PING:
        code = health(s, line, sizeof(line));
        text_str(f, line);
        fputc('\n', f);
        break;
    case STATUS_BAD:
        code = 400;
        fputs(known, f);
        break;
    default:
        text(f, info, s, full);
        break;
    }
    return code;
}

int
status_render(const struct status_info *info, enum status_format fmt, int full,
              char **out, size_t *len, const char **type)
{
    struct snapshot s;
    FILE *f;
    int code;

    if (snapshot(info, &s) == -1)
        return -1;
    if ((f = open_memstream(out, len)) == NULL) {
        free(s.w);
        return -1;
    }
    code = render_page(f, info, &s, fmt, full, type);
    free(s.w);
    if (fclose(f) != 0) {
        free(*out);
        return -1;
    }
    return code;
}
