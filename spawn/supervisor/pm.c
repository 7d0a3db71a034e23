/*
 * pm.c: the process manager's sizing; see pm.h, whose header comment
 * gives the reasoning this file follows.
 */
#include "pm.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *const mode_names[] = {"static", "dynamic", "ondemand",
                                         "auto"};

const char *
pm_mode_name(enum pm_mode mode)
{
    assert(mode >= PM_STATIC && mode <= PM_AUTO);
    return mode_names[mode];
}

/* up: the smallest whole number at least x (x >= 0), without libm. */
static int
up(double x)
{
    int n = (int)x;

    if (x > 1e6)
        return 1000000;
    return (double)n < x - 1e-9 ? n + 1 : n;
}

static int
clamp(const struct pm *pm, int n)
{
    int lo = pm->cfg.mode == PM_STATIC ? 1 : pm->cfg.min;

    if (n > pm->cfg.max)
        n = pm->cfg.max;
    return n < lo ? lo : n;
}

/* calm_reset: idleness is counted afresh from now. */
static void
calm_reset(struct pm *pm, int64_t now)
{
    pm->calm_since_ms = now;
    pm->calm_need = -1;
}

/* settle: the pool is moving: measure nothing until it has its size and
 * one more window has passed. */
static void
settle(struct pm *pm, int64_t now)
{
    pm->settling = 1;
    memset(&pm->acc, 0, sizeof(pm->acc));
    pm->cpu_idle_span = pm->run_wait_span = 0;
    calm_reset(pm, now);
}

/* forget: what auto learnt of sizes, gone (the load changed). */
static void
forget(struct pm *pm)
{
    pm->probing = pm->looks = 0;
    pm->ceiling = pm->floor = 0;
    pm->context_off = 0;
}

void
pm_init(struct pm *pm, const struct pm_config *cfg)
{
    assert(cfg->min >= 0 && cfg->min <= cfg->max);
    memset(pm, 0, sizeof(*pm));
    pm->cfg = *cfg;
    pm->target = clamp(pm, cfg->start);
    pm->hold_ms = PM_HOLD_MS;
    settle(pm, 0);
}

int
pm_set(struct pm *pm, int target)
{
    pm->target = clamp(pm, target);
    forget(pm);
    settle(pm, pm->calm_since_ms);
    return pm->target;
}

int
pm_wake(struct pm *pm, char *why, size_t len)
{
    if (pm->cfg.mode == PM_STATIC || pm->target > 0)
        return pm->target;
    pm->target = clamp(pm, 1);
    settle(pm, pm->calm_since_ms);
    snprintf(why, len, "a connection waits and no worker runs");
    return pm->target;
}

/* change: a new target, from a decision; the pool moves. */
static int
change(struct pm *pm, int to, int64_t now)
{
    to = clamp(pm, to);
    if (to != pm->target) {
        pm->target = to;
        settle(pm, now);
    }
    return pm->target;
}

/* run_share: the share of their busy time the workers waited for a
 * CPU, or -1 when unknown. */
static double
run_share(const struct pm_measure *m)
{
    return m->run_wait >= 0 && m->busy > 0 ? m->run_wait / m->busy : -1;
}

/* cpu_bound: the machine's CPUs busy and the pool's workers waiting for
 * one, with a worker for each CPU at least (pm.h says why all three). */
static int
cpu_bound(const struct pm *pm, const struct pm_measure *m)
{
    return m->cpu_idle >= 0 && m->cpu_idle < 1 - PM_CPU_BUSY &&
           run_share(m) >= PM_RUN_WAIT && pm->target >= pm->cfg.cpus;
}

/* cpu_note: "; CPU 97% busy, workers waited for one 3%" with what the
 * measurement knew, else "". */
static const char *
cpu_note(const struct pm_measure *m, char *buf, size_t len)
{
    int n = 0;

    buf[0] = '\0';
    if (m->cpu_idle >= 0)
        n = snprintf(buf, len, "; CPU %.0f%% busy", 100 * (1 - m->cpu_idle));
    if (run_share(m) >= 0 && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "%s workers waited for one %.0f%%",
                 n > 0 ? "," : ";", 100 * run_share(m));
    return buf;
}

/*
 * idle_shrink: every window since calm_since needed fewer workers than
 * the pool has, for --idle-timeout: down to the most one needed.
 * need is what this window needed.  Results: 1 when it shrank.
 */
static int
idle_shrink(struct pm *pm, const struct pm_window *w, int need, char *why,
            size_t len)
{
    int to;

    if (need >= pm->target) {
        calm_reset(pm, w->end_ms);
        return 0;
    }
    if (need > pm->calm_need)
        pm->calm_need = need;
    if (w->end_ms - pm->calm_since_ms < pm->cfg.idle_ms ||
        pm->target <= pm->cfg.min)
        return 0;
    to = pm->calm_need > pm->cfg.min ? pm->calm_need : pm->cfg.min;
    snprintf(why, len,
             "at most %d needed in the last %.0f s (now %.1f busy, %.1f of "
             "them waiting for a CPU, %.0f req/s)",
             pm->calm_need, (double)pm->cfg.idle_ms / 1000, w->busy,
             w->run_wait > 0 ? w->run_wait : 0.0,
             w->span_ms > 0 ? (double)w->requests * 1000 / w->span_ms : 0.0);
    /* Half the pool or less needed: the load fell, or the CPUs became
     * its limit, and what was learnt of it goes; a smaller trim (the
     * workers waiting for a CPU counted out) keeps it, and stops at the
     * last size a probe was kept at.  (Counting those waiting in for the
     * fall kept 64, kept at 5 ms, for /db at 0 ms: 0.5 of the best.) */
    if (to <= pm->target / 2)
        forget(pm);
    else if (to < pm->floor)
        to = pm->floor;
    if (to >= pm->target) {
        calm_reset(pm, w->end_ms);
        return 0;
    }
    pm->probing = pm->looks = 0;
    change(pm, to, w->end_ms);
    return 1;
}

/* --- dynamic and ondemand ------------------------------------------------ */

static int
dynamic_step(struct pm *pm, const struct pm_window *w, char *why, size_t len)
{
    int spare = pm->target - up(w->busy + w->queue);

    if (spare < pm->cfg.spare_min && pm->target < pm->cfg.max) {
        snprintf(why, len,
                 "%d spare, below --spare-min %d (%.1f busy, queue %.1f)",
                 spare, pm->cfg.spare_min, w->busy, w->queue);
        return change(pm, pm->target + pm->cfg.spare_min - spare, w->end_ms);
    }
    if (spare > pm->cfg.spare_max && pm->target > pm->cfg.min) {
        snprintf(why, len, "%d spare, above --spare-max %d (%.1f busy)", spare,
                 pm->cfg.spare_max, w->busy);
        return change(pm, pm->target - 1, w->end_ms);
    }
    return pm->target;
}

static int
ondemand_step(struct pm *pm, const struct pm_window *w, char *why, size_t len)
{
    int want = w->busy_max + w->queue_max;

    if ((w->queue_max > 0 || w->busy_max >= pm->target) &&
        pm->target < pm->cfg.max) {
        snprintf(why, len,
                 "requests wait for a worker (%d busy at once, queue up to "
                 "%d)",
                 w->busy_max, w->queue_max);
        forget(pm);
        return change(pm, want > pm->target ? want : pm->target + 1, w->end_ms);
    }
    idle_shrink(pm, w, w->busy_max + w->queue_max, why, len);
    return pm->target;
}

/* --- auto ----------------------------------------------------------------- */

/* measure_add: a window into the measurement under way. */
static void
measure_add(struct pm *pm, const struct pm_window *w)
{
    struct pm_measure *a = &pm->acc;
    double s = (double)w->span_ms / 1000;

    a->windows++;
    a->span_s += s;
    a->requests += (double)w->requests;
    if (s > 0 && (double)w->requests / s > a->best)
        a->best = (double)w->requests / s;
    a->busy += w->busy * s;
    a->db += w->db * s;
    a->queue += w->queue * s;
    if (w->cpu_idle >= 0) {
        a->cpu_idle += w->cpu_idle * s;
        pm->cpu_idle_span += s;
    }
    if (w->run_wait >= 0) {
        a->run_wait += w->run_wait * s;
        pm->run_wait_span += s;
    }
}

/* measure_done: the measurement under way is complete: its means into
 * m, and a new one begins.  Results: 1, or 0 when it needs more. */
static int
measure_done(struct pm *pm, struct pm_measure *m)
{
    struct pm_measure *a = &pm->acc;

    if (a->windows < PM_MEASURE ||
        (a->requests < PM_JUDGE_REQUESTS && a->windows < PM_MEASURE_MAX) ||
        a->span_s <= 0)
        return 0;
    *m = *a;
    m->rate = a->requests / a->span_s;
    m->busy = a->busy / a->span_s;
    m->db = a->db / a->span_s;
    m->queue = a->queue / a->span_s;
    m->cpu_idle = pm->cpu_idle_span > 0 ? a->cpu_idle / pm->cpu_idle_span : -1;
    m->run_wait = pm->run_wait_span > 0 ? a->run_wait / pm->run_wait_span : -1;
    memset(a, 0, sizeof(*a));
    pm->cpu_idle_span = pm->run_wait_span = 0;
    return 1;
}

/*
 * gain: the change of rate from b to m, as a fraction, from each one's
 * best second: other work on the machine only ever slows a second down,
 * so a measurement's fastest second is the nearest to what its size can
 * do (pm.h).
 */
static double
gain(const struct pm_measure *b, const struct pm_measure *m)
{
    if (b->best > 0)
        return m->best / b->best - 1;
    return m->best > 0 ? 1 : 0;
}

/* probe: try size to, judged against m. */
static int
probe(struct pm *pm, const struct pm_measure *m, int to, int64_t now)
{
    pm->base = *m;
    pm->probe_from = pm->target;
    pm->probing = 1;
    pm->looks = 0;
    return change(pm, to, now);
}

/* ceiling_at: size n bought nothing over b, measured at size from. */
static void
ceiling_at(struct pm *pm, int n, const struct pm_measure *b, int from,
           int64_t now)
{
    if (n == pm->last_ceiling)
        pm->hold_ms =
            pm->hold_ms * 2 < PM_HOLD_MAX_MS ? pm->hold_ms * 2 : PM_HOLD_MAX_MS;
    else
        pm->hold_ms = PM_HOLD_MS;
    pm->ceiling = pm->last_ceiling = n;
    pm->ceiling_rate = b->best;
    pm->ceiling_queue = b->queue;
    pm->ceiling_cpu = cpu_bound(pm, b);
    pm->ceiling_from = from;
    pm->ceiling_run = run_share(b);
    pm->ceiling_until_ms = now + pm->hold_ms;
    pm->context_off = 0;
}

/*
 * better: the better of two looks at one size, for each figure: other
 * work on the machine only ever slows a look down.
 */
static struct pm_measure
better(const struct pm_measure *a, const struct pm_measure *b)
{
    struct pm_measure m = a->busy >= b->busy ? *a : *b;

    if (a->best > m.best || b->best > m.best)
        m.best = a->best > b->best ? a->best : b->best;
    return m;
}

/* near: two rates of one load: within PM_CONTEXT of each other. */
static int
near(double a, double b)
{
    return a > 0 && b > 0 && a <= b * PM_CONTEXT && b <= a * PM_CONTEXT;
}

/* rose_here: the floor was kept for a rise of the rate, under the load
 * m measures (its best second within PM_CONTEXT of the floor's): a floor
 * kept under another load (/db 1 ms away, 32 for +140%) says nothing of
 * this one (/queries, 6 times slower a request). */
static int
rose_here(const struct pm *pm, const struct pm_measure *m)
{
    return pm->floor_rose && near(m->best, pm->floor_rate);
}

/* below: the size a descent tries after n: half, but a worker per CPU
 * at least (fewer leave a CPU with nothing to run), and --workers-min. */
static int
below(const struct pm *pm, int n)
{
    int lo = pm->cfg.min > pm->cfg.cpus ? pm->cfg.min : pm->cfg.cpus;
    int to = n / 2 > lo ? n / 2 : lo;

    return to < n ? to : n;
}

/*
 * judge: the bigger pool, measured m0, against the measurement before it
 * (pm.h: the added workers must have found work, and the rate have
 * risen): kept, or undone after a second look that says no as well.
 * Results: the target; pm->probing stays set while a second look is
 * taken.
 */
static int
judge(struct pm *pm, const struct pm_measure *m0, int64_t now, char *why,
      size_t len)
{
    const struct pm_measure *b = &pm->base;
    struct pm_measure m = pm->looks > 0 ? better(&pm->first, m0) : *m0;
    int from = pm->probe_from, added = pm->target - from, to;
    double g = gain(b, &m), took = m.busy - b->busy, rise;
    double want = PM_TOOK * added * (from > 0 ? b->busy / from : 1);
    char cpu[80];

    /* The load fell away: nothing to judge.  Else the rate must rise too
     * (more workers kept busy by waiting longer buy nothing), unless it
     * says nothing (few requests) or the load is the clients' (an open
     * load: the wait is what workers buy). */
    if (m.queue < PM_QUEUE && m.busy < PM_UTIL_SHRINK * from) {
        pm->probing = pm->looks = 0;
        return pm->target;
    }
    /* The rise the rate must show: PM_GAIN; when the added workers were
     * nearly all kept busy and the CPUs are not the limit, only no fall
     * beyond PM_GAIN (then the rate's noise is what could undo a good
     * probe: 16 -> 32 at 1 ms, +40% on quiet seconds, looked flat on
     * busy ones). */
    rise = took >= PM_BUSY_ALL * want && !cpu_bound(pm, b) ? -PM_GAIN : PM_GAIN;
    if ((took >= want &&
         (g >= rise || b->requests < PM_FEW_REQUESTS ||
          m.requests < PM_FEW_REQUESTS ||
          (g > -PM_GAIN && b->queue >= 1 && m.queue <= b->queue / 4))) ||
        (g >= PM_GAIN_ALONE && b->requests >= PM_FEW_REQUESTS &&
         took >= PM_TOOK_NEAR * want)) {
        /* Kept: a trim for the workers waiting for a CPU must not undo
         * what was measured to buy requests. */
        pm->probing = pm->looks = 0;
        pm->floor = pm->target;
        pm->floor_rose = g >= PM_GAIN;
        pm->floor_rate = m.best;
        /* Kept at --workers-max: no probe above can show that it buys
         * nothing, and a rise as large as PM_GAIN is within the noise at
         * that size (/queries 1 ms away: 64 kept over 32 for +13%, 0.88 of
         * 8's rate), so the descent asks whether fewer serve as well, the
         * undone probe's question: below the size the probe came from,
         * which was just measured, judged against this measurement; the
         * last size that held is that one when the rise was less than
         * PM_GAIN, else this. */
        to = below(pm, from);
        if (pm->target < pm->cfg.max || to == from)
            return pm->target;
        snprintf(why, len,
                 "%d workers, the most allowed, kept %.1f more busy (%.1f "
                 "wanted) and answered %+.0f%% (best second %.0f -> %.0f "
                 "req/s%s): fewer may serve as well",
                 pm->target, took, want, 100 * g, b->best, m.best,
                 cpu_note(&m, cpu, sizeof(cpu)));
        ceiling_at(pm, pm->target, &m, pm->target, now);
        pm->base = m;
        pm->probing = -1;
        pm->probe_from = pm->floor_rose ? pm->target : from;
        return change(pm, to, now);
    }
    if (pm->looks == 0) {
        pm->looks = 1;
        pm->first = m;
        return pm->target;
    }
    pm->probing = pm->looks = 0;
    ceiling_at(pm, pm->target, b, from, now);
    /* The added workers found work and bought nothing: what they wait
     * for is the limit, and fewer may serve as well (pm.h), unless the
     * size the probe came from was itself kept for a rise: go below it,
     * judged against the same base. */
    to = took >= want && !(pm->floor == from && rose_here(pm, b))
             ? below(pm, from)
             : from;
    snprintf(why, len,
             "%d workers kept %.1f more busy (%.1f wanted) and answered "
             "%+.0f%% (best second %.0f -> %.0f req/s%s): %s",
             pm->target, took, want, 100 * g, b->best, m.best,
             cpu_note(&m, cpu, sizeof(cpu)),
             to < from ? "back, and below: fewer may serve as well"
                       : "back; no more while the load stays");
    if (to < from) {
        pm->probing = -1;
        pm->probe_from = from;
    }
    return change(pm, to, now);
}

/*
 * judge_down: a smaller pool, measured m0, against the base measured at
 * the bigger size the descent began from: kept if its best second holds
 * within PM_GAIN, and the descent goes on; else, after a second look
 * unless the loss is clear, back to the last size that held, which
 * becomes the floor.
 */
static int
judge_down(struct pm *pm, const struct pm_measure *m0, int64_t now, char *why,
           size_t len)
{
    const struct pm_measure *b = &pm->base;
    struct pm_measure m = pm->looks > 0 ? better(&pm->first, m0) : *m0;
    int from = pm->probe_from, to;
    double g = gain(b, &m);

    if (m.queue < PM_QUEUE && m.busy < PM_UTIL_SHRINK * pm->target) {
        pm->probing = pm->looks = 0; /* the load fell away */
        return pm->target;
    }
    if (g > -PM_GAIN || b->requests < PM_FEW_REQUESTS ||
        m.requests < PM_FEW_REQUESTS) {
        pm->floor = pm->target;
        pm->floor_rose = 0;
        pm->floor_rate = m.best;
        /* The next size is judged against the best second seen so far:
         * fewer must serve as well as any size tried (/queries 1 ms away:
         * 64, 32, 16, 8 and 4 each within 10% of 64's 1,548 req/s, 8 at
         * 1,875, and 4 a quarter slower than 8 in the sweeps). */
        if (m.best > pm->base.best)
            pm->base.best = m.best;
        to = below(pm, pm->target);
        if (to == pm->target) {
            pm->probing = pm->looks = 0;
            return pm->target;
        }
        snprintf(why, len,
                 "%d workers answered %+.0f%% of the best second with more "
                 "(%.0f -> %.0f req/s), %.1f busy: fewer still",
                 pm->target, 100 * g, b->best, m.best, m.busy);
        pm->probe_from = pm->target;
        pm->looks = 0;
        return change(pm, to, now);
    }
    /* A loss of PM_LOST is taken at its first look, back being the side
     * known to hold; a smaller one gets a second (32 after 64, /queries
     * 1 ms away: -17% at one look, the same rate at the next). */
    if (pm->looks == 0 && g > -PM_LOST) {
        pm->looks = 1;
        pm->first = m;
        return pm->target;
    }
    pm->probing = pm->looks = 0;
    pm->floor = from;
    pm->floor_rose = 1;
    pm->floor_rate = b->best;
    snprintf(why, len,
             "%d workers answered %+.0f%% of the best second with more "
             "(%.0f -> %.0f req/s): back to the fewest that served as well",
             pm->target, 100 * g, b->best, m.best);
    return change(pm, from, now);
}

/* grow_to: the size a probe tries when requests wait (m). */
static int
grow_to(const struct pm *pm, const struct pm_measure *m)
{
    int n = pm->target, to, need;

    if (n == 0)
        return 1;
    /* CPU-bound: a quarter more (a worker per CPU at least), near the
     * knee where a big step costs while it is judged and buys little;
     * else twice. */
    to = cpu_bound(pm, m) ? n + (n / 4 > pm->cfg.cpus ? n / 4 : pm->cfg.cpus)
                          : 2 * n;
    /* Every worker busy: how much more is wanted cannot be seen (nginx
     * may hold the requests, on kept connections); with some idle, the
     * queue tells. */
    need = up((m->busy + m->queue) / PM_UTIL_SHRINK);
    if (m->busy < PM_UTIL_GROW * n && need > n && need < to)
        to = need;
    return to > n ? to : n + 1;
}

/*
 * ceiling_upkeep: a ceiling lapses with time, or when the load moves:
 * the rate at this size off the one it was found at, or the queue
 * deeper than twice (a load that grew when every worker was busy
 * shows there only).  A measurement far off (the rate off by
 * PM_CONTEXT squared, or the CPUs half idle under a ceiling they set)
 * counts PM_CONTEXT_FAR: the noise of the shared machine came to 2.7
 * times at most, and the bench's auto cells measured a pool that took
 * five 2-s measurements to see /db turn into /queries, its size held
 * 10 s by then.
 */
static void
ceiling_upkeep(struct pm *pm, const struct pm_measure *m, int64_t now)
{
    double r = pm->ceiling_rate, f, rs;
    int off = 0;

    if (pm->ceiling == 0)
        return;
    if (now >= pm->ceiling_until_ms) {
        pm->ceiling = 0;
        return;
    }
    if (r > 0 && m->best > 0) {
        f = m->best > r ? m->best / r : r / m->best;
        off = f >= PM_CONTEXT * PM_CONTEXT ? PM_CONTEXT_FAR : f > PM_CONTEXT;
    }
    if (m->queue > 2 * pm->ceiling_queue + 1 && off == 0)
        off = 1;
    /* A ceiling found with the CPUs the limit holds only while they are:
     * the database moved away, and the rate at the same size fell by
     * less than PM_CONTEXT (2 workers: 3,100 req/s of /queries with it
     * local, 1,650 of /db 1 ms away, the CPUs three quarters idle).  At
     * the size the ceiling was measured from, the workers no longer
     * waiting for a CPU as they did say so alone, the machine's CPUs
     * perhaps busy with other work (6 workers, the CPUs 80-100% busy while
     * the far traces were recorded, waiting for one 9% where they had
     * waited 78%); at a smaller one, they may just have CPUs enough. */
    rs = run_share(m);
    if (pm->ceiling_cpu && rs >= 0 && rs < PM_RUN_WAIT &&
        (m->cpu_idle >= 1 - PM_CPU_BUSY ||
         (pm->target == pm->ceiling_from && 3 * rs < pm->ceiling_run))) {
        int cpu = m->cpu_idle >= 0.5 ? PM_CONTEXT_FAR : 1;

        off = off > cpu ? off : cpu;
    }
    if (off == 0) {
        pm->context_off = 0;
        return;
    }
    pm->context_off += off;
    if (pm->context_off >= PM_CONTEXT_N)
        forget(pm);
}

/* decide: what a complete measurement m at the target means. */
static int
decide(struct pm *pm, const struct pm_measure *m, int64_t now, char *why,
       size_t len)
{
    struct pm_measure base = *m;
    int to, before = pm->target;
    char cpu[80];

    if (pm->probing) {
        to = pm->probing > 0 ? judge(pm, m, now, why, len)
                             : judge_down(pm, m, now, why, len);
        if (to != before || pm->probing)
            return pm->target; /* moved, or a second look to take */
    }
    /* Kept, or none: m is the base of what follows.  A ceiling holds the
     * size: a probe below it would be a smaller step than the one that
     * bought nothing, expected to buy less. */
    ceiling_upkeep(pm, m, now);
    /* The base's best second is the better of m's and the measurement's
     * before it at this size, under this load, as a probe is judged on
     * the better of two looks: a slow base (/queries 1 ms away, 32
     * workers at 978 req/s, 1,500 the measurement before) made 64 look
     * +99%, and it stayed. */
    if (pm->last_size == pm->target && near(pm->last_best, m->best) &&
        pm->last_best > base.best)
        base.best = pm->last_best;
    pm->last_size = pm->target;
    pm->last_best = m->best;
    if (pm->ceiling > 0 || pm->target >= pm->cfg.max ||
        (m->queue < PM_QUEUE && m->busy < PM_UTIL_GROW * pm->target))
        return pm->target;
    to = grow_to(pm, m);
    snprintf(why, len,
             "requests wait: queue %.1f, %.1f of %d busy (%.0f%% of it in "
             "the database), %.0f req/s%s",
             m->queue, m->busy, pm->target,
             m->busy > 0 ? 100 * m->db / m->busy : 0.0, m->rate,
             cpu_note(m, cpu, sizeof(cpu)));
    return probe(pm, &base, to < pm->cfg.max ? to : pm->cfg.max, now);
}

/*
 * working: the workers busy in a window, less those waiting for a CPU:
 * what more workers could share.  A worker waiting for a CPU would wait
 * as long in a bigger pool.
 */
static double
working(const struct pm_window *w)
{
    double n = w->run_wait > 0 ? w->busy - w->run_wait : w->busy;

    return n > 0 ? n : 0;
}

static int
auto_step(struct pm *pm, const struct pm_window *w, char *why, size_t len)
{
    struct pm_measure m;

    if (idle_shrink(pm, w, up((working(w) + w->queue) / PM_UTIL_SHRINK), why,
                    len))
        return pm->target;
    measure_add(pm, w);
    if (!measure_done(pm, &m))
        return pm->target;
    return decide(pm, &m, w->end_ms, why, len);
}

int
pm_step(struct pm *pm, const struct pm_window *w, char *why, size_t len)
{
    if (pm->cfg.mode == PM_STATIC)
        return pm->target;
    if (w->moving > 0 || w->workers != pm->target) {
        settle(pm, w->end_ms);
        return pm->target;
    }
    if (pm->settling) {
        settle(pm, w->end_ms);
        pm->settling = 0;
        return pm->target;
    }
    switch (pm->cfg.mode) {
    case PM_DYNAMIC:
        return dynamic_step(pm, w, why, len);
    case PM_ONDEMAND:
        return ondemand_step(pm, w, why, len);
    default:
        return auto_step(pm, w, why, len);
    }
}

/* --- the report ------------------------------------------------------------
 */

void
pm_report_write(struct pm_report *r, const struct pm_view *v)
{
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    r->mode = (int32_t)v->mode;
    r->target = v->target;
    r->current = v->current;
    r->min = v->min;
    r->max = v->max;
    r->from = v->from;
    r->changed_unix = v->changed_unix;
    memcpy(r->why, v->why, sizeof(r->why));
    r->why[sizeof(r->why) - 1] = '\0';
    atomic_thread_fence(memory_order_release);
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
}

void
pm_report_read(const struct pm_report *r, struct pm_view *v)
{
    uint32_t s1, s2;
    int tries;

    for (tries = 0; tries < 100; tries++) {
        s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
        v->mode = r->mode >= PM_STATIC && r->mode <= PM_AUTO
                      ? (enum pm_mode)r->mode
                      : PM_STATIC;
        v->target = r->target;
        v->current = r->current;
        v->min = r->min;
        v->max = r->max;
        v->from = r->from;
        v->changed_unix = r->changed_unix;
        memcpy(v->why, r->why, sizeof(v->why));
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&r->seq, memory_order_relaxed);
        if (s1 == s2 && (s1 & 1) == 0)
            break;
    }
    v->why[sizeof(v->why) - 1] = '\0';
}

int
pm_report_line(const struct pm_view *v, int64_t now_unix, char *buf, size_t len)
{
    char bounds[32] = "";

    if (v->mode != PM_STATIC)
        snprintf(bounds, sizeof(bounds), ", %d..%d", v->min, v->max);
    if (v->changed_unix == 0)
        return snprintf(buf, len, "%d workers, wanted %d (%s%s); no change yet",
                        v->current, v->target, pm_mode_name(v->mode), bounds);
    return snprintf(
        buf, len, "%d workers, wanted %d (%s%s); %d -> %d %lld s ago: %s",
        v->current, v->target, pm_mode_name(v->mode), bounds, v->from,
        v->target,
        (long long)(now_unix > v->changed_unix ? now_unix - v->changed_unix
                                               : 0),
        v->why);
}
