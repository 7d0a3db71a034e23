/*
 * gauge.c: what the pool measures of itself; see gauge.h.
 */
#define _GNU_SOURCE
#include "gauge.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "scoreboard.h"

/* What a slot said at the last window's end. */
struct gslot {
    pid_t pid; /* 0: no worker served from it then */
    uint64_t requests;
    uint64_t phase_ns[SB_PHASES];
    int64_t run_wait_ns; /* -1: unread */
};

struct gauge {
    struct scoreboard *sb;
    int listen_fd;
    int nslots;
    struct gslot *slots;
    /* The window under way. */
    int64_t start_ns;
    int samples, busy_max, queue_max;
    double busy_sum, db_sum, queue_sum;
    uint64_t cpu_total, cpu_idle; /* /proc/stat at its start; 0: unread */
};

/* cpu_times: the machine's CPU time, all and idle (with iowait), in
 * ticks.  Results: 0, or -1. */
static int
cpu_times(uint64_t *total, uint64_t *idle)
{
    unsigned long long v[8] = {0};
    char buf[512];
    ssize_t n;
    int fd, i;

    if ((fd = open("/proc/stat", O_RDONLY | O_CLOEXEC)) == -1)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
        return -1;
    for (*total = 0, i = 0; i < 8; i++)
        *total += v[i];
    *idle = v[3] + v[4];
    return 0;
}

/* run_wait_ns: how long pid has waited runnable for a CPU since it
 * started (/proc/PID/schedstat), or -1. */
static int64_t
run_wait_ns(pid_t pid)
{
    unsigned long long on_cpu, waited;
    char path[48], buf[128];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/schedstat", (long)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &on_cpu, &waited) != 2)
        return -1;
    return (int64_t)waited;
}

/* window_begin: a new window from now, the CPU's times read. */
static void
window_begin(struct gauge *g, int64_t now)
{
    g->start_ns = now;
    g->samples = g->busy_max = g->queue_max = 0;
    g->busy_sum = g->db_sum = g->queue_sum = 0;
    if (cpu_times(&g->cpu_total, &g->cpu_idle) == -1)
        g->cpu_total = g->cpu_idle = 0;
}

struct gauge *
gauge_new(struct scoreboard *sb, int listen_fd)
{
    struct gauge *g = calloc(1, sizeof(*g));

    if (g == NULL)
        return NULL;
    g->sb = sb;
    g->listen_fd = listen_fd;
    g->nslots = sb_nslots(sb);
    if ((g->slots = calloc((size_t)g->nslots, sizeof(*g->slots))) == NULL) {
        free(g);
        return NULL;
    }
    window_begin(g, sb_now_ns());
    return g;
}

void
gauge_free(struct gauge *g)
{
    if (g == NULL)
        return;
    free(g->slots);
    free(g);
}

void
gauge_sample(struct gauge *g, const pid_t *pids, int64_t now)
{
    int i, busy = 0, db = 0;
    unsigned q;

    (void)now;
    for (i = 0; i < g->nslots; i++) {
        const struct sb_slot *slot = sb_slot(g->sb, i);
        enum sb_state st;

        if (pids[i] <= 0 || sb_pid(slot) != pids[i])
            continue;
        st = sb_state(slot);
        busy += sb_busy(st);
        db += st == SB_DATABASE;
    }
    q = g->listen_fd >= 0 ? listener_queue(g->listen_fd, NULL) : 0;
    g->samples++;
    g->busy_sum += busy;
    g->db_sum += db;
    g->queue_sum += q;
    if (busy > g->busy_max)
        g->busy_max = busy;
    if ((int)q > g->queue_max)
        g->queue_max = (int)q;
}

/* since: how much a counter grew since base (base 0 for a new worker;
 * a counter below its base was reset: all of it is new). */
static uint64_t
since(uint64_t now, uint64_t base)
{
    return now >= base ? now - base : now;
}

/*
 * slots_window: each serving slot's growth since the last window into
 * the sums (requests, busy and database time, run wait), and its values
 * kept for the next.  Results: the workers serving.
 */
static int
slots_window(struct gauge *g, const pid_t *pids, uint64_t *requests,
             uint64_t *busy_ns, uint64_t *db_ns, int64_t *wait_ns,
             int *wait_known)
{
    struct sb_stats st;
    int i, p, n = 0;

    for (i = 0; i < g->nslots; i++) {
        struct gslot *s = &g->slots[i];
        int fresh;
        int64_t wait;

        sb_stats(sb_slot(g->sb, i), &st);
        if (pids[i] <= 0 || st.pid != pids[i]) {
            s->pid = 0;
            continue;
        }
        n++;
        fresh = s->pid != pids[i];
        if (fresh)
            memset(s, 0, sizeof(*s));
        *requests += since(st.requests, s->requests);
        for (p = 0; p < SB_PHASES; p++)
            *busy_ns += since(st.phase_ns[p], s->phase_ns[p]);
        *db_ns += since(st.phase_ns[SB_PHASE_DATABASE],
                        s->phase_ns[SB_PHASE_DATABASE]);
        wait = run_wait_ns(pids[i]);
        if (!fresh && wait >= 0 && s->run_wait_ns >= 0 &&
            wait >= s->run_wait_ns) {
            *wait_ns += wait - s->run_wait_ns;
            *wait_known = 1;
        }
        s->pid = pids[i];
        s->requests = st.requests;
        memcpy(s->phase_ns, st.phase_ns, sizeof(s->phase_ns));
        s->run_wait_ns = wait;
    }
    return n;
}

void
gauge_window(struct gauge *g, const pid_t *pids, int moving, int64_t now,
             struct pm_window *w)
{
    uint64_t requests = 0, busy_ns = 0, db_ns = 0, total, idle;
    int64_t wait_ns = 0, span = now - g->start_ns;
    int wait_known = 0;

    memset(w, 0, sizeof(*w));
    if (span < 1)
        span = 1;
    w->end_ms = now / 1000000;
    w->span_ms = (int)(span / 1000000);
    w->moving = moving;
    w->workers = slots_window(g, pids, &requests, &busy_ns, &db_ns, &wait_ns,
                              &wait_known);
    w->requests = requests;
    w->busy_max = g->busy_max;
    w->queue_max = g->queue_max;
    if (g->samples > 0)
        w->queue = g->queue_sum / g->samples;
    /* The phases' time is exact once a request ends; without it (no
     * timing, or a request longer than the window) the sampled states. */
    if (busy_ns > 0) {
        w->busy = (double)busy_ns / (double)span;
        w->db = (double)db_ns / (double)span;
    } else if (g->samples > 0) {
        w->busy = g->busy_sum / g->samples;
        w->db = g->db_sum / g->samples;
    }
    if (w->busy > w->workers && w->busy > w->busy_max)
        w->busy = w->workers > w->busy_max ? w->workers : w->busy_max;
    w->run_wait = wait_known ? (double)wait_ns / (double)span : -1;
    w->cpu_idle = -1;
    if (g->cpu_total > 0 && cpu_times(&total, &idle) == 0 &&
        total > g->cpu_total)
        w->cpu_idle =
            (double)(idle - g->cpu_idle) / (double)(total - g->cpu_total);
    window_begin(g, now);
}

int
gauge_line(const struct pm_window *w, char *buf, size_t len)
{
    return snprintf(buf, len,
                    "workers=%d moving=%d span=%d requests=%" PRIu64
                    " busy=%.2f busy_max=%d db=%.2f queue=%.1f queue_max=%d "
                    "cpu_idle=%.2f run_wait=%.2f",
                    w->workers, w->moving, w->span_ms, w->requests, w->busy,
                    w->busy_max, w->db, w->queue, w->queue_max, w->cpu_idle,
                    w->run_wait);
}

int
gauge_parse(const char *s, struct pm_window *w)
{
    const char *p = strstr(s, "workers=");
    unsigned long long requests;

    memset(w, 0, sizeof(*w));
    if (p == NULL ||
        sscanf(p,
               "workers=%d moving=%d span=%d requests=%llu busy=%lf "
               "busy_max=%d db=%lf queue=%lf queue_max=%d cpu_idle=%lf "
               "run_wait=%lf",
               &w->workers, &w->moving, &w->span_ms, &requests, &w->busy,
               &w->busy_max, &w->db, &w->queue, &w->queue_max, &w->cpu_idle,
               &w->run_wait) != 11 ||
        w->workers < 0 || w->span_ms <= 0)
        return -1;
    w->requests = (uint64_t)requests;
    return 0;
}
