/*
 * pm.h: the process manager's sizing, as a pure function of what the pool
 * measured: how many workers the pool should have now.
 *
 * The supervisor's gauge (gauge.h) sums what the scoreboard and the kernel
 * say over one window of PM_WINDOW_MS into a struct pm_window; pm_step()
 * reads it and answers a target, with the reason for a change in one line.
 * Nothing here makes a system call or reads a clock: the window carries
 * its time, so that the unit tests drive the controller with recorded
 * traces, second by second, without a process.
 *
 * Four modes, one mechanism (the same windows, the same report, the same
 * log line per change), named after php-fpm's so that its settings map
 * one to one:
 *
 *   static    the size is -w, changed only by SIGTTIN/SIGTTOU
 *             (pm = static, pm.max_children);
 *   dynamic   each window, the workers not needed (the pool's size less
 *             those busy or waited for) are kept between --spare-min and
 *             --spare-max: below, as many are added as are missing; above,
 *             one goes (pm = dynamic and its min/max_spare_servers; php-fpm
 *             also stops one idle child a second);
 *   ondemand  a worker is added whenever a request waits for one (as many
 *             as wait); workers beyond the most that were busy at once
 *             during the last --idle-timeout go (pm = ondemand,
 *             pm.process_idle_timeout; --workers-min 0 is php-fpm's "no
 *             child until a request comes");
 *   auto      the size that serves the most requests per second, found by
 *             trying, below.
 *
 * Every mode stays within --workers-min and --workers-max (php-fpm's
 * pm.max_children).
 *
 * == auto: the reasoning ==
 *
 * The right size depends on what a worker waits for.  A worker whose
 * database is a network round trip away spends most of a request waiting
 * on it, so throughput grows with workers until the CPUs are busy (at 1 ms,
 * /db grows from 1,500 req/s with 2 workers to 12,800 with 32 on this
 * project's 2-core machine, then falls to 10,800 with 64); with
 * PostgreSQL local the CPUs are busy from 2 workers on, and every worker
 * more costs (11,500 req/s with 2, 8,900 with 4, 6,200 with 16).
 *
 * The phases a worker reports cannot tell these apart by themselves: at
 * CPU saturation a request spends longer "in the database" too, because
 * PostgreSQL's backends wait for a CPU.  And the kernel shares the CPUs
 * by scheduling group: with autogroups and no systemd, the pool (one
 * session) is one group while each PostgreSQL backend is a group of its
 * own, so at saturation a worker more gets no CPU of its own, and adds a
 * backend that takes a share from the rest.  So a long database phase is
 * never a reason to add workers here, nor is "no gain" read as "the
 * database is slow": the pool grows only when requests wait for a
 * worker, keeps workers only if they were kept busy and the requests per
 * second rose, takes small steps where the kernel says its workers wait
 * for a CPU, and counts those waiting out of what it needs.
 *
 * The kernel's word is two figures, and it takes both: the machine's idle
 * CPU share (/proc/stat) below 1 - PM_CPU_BUSY, and the workers' time
 * runnable but waiting for a CPU (/proc/PID/schedstat) at least
 * PM_RUN_WAIT of their busy time.  Either alone misleads on a machine
 * shared with other work: its CPUs were 95-100% busy the whole time the
 * traces were recorded, while workers waiting on a database 1 ms away
 * waited for a CPU 5-15% of their busy time; with the database local,
 * 40-70%.  And it holds only for a pool of at least as many workers as
 * CPUs: a group's share is per CPU, so a pool with fewer workers than
 * CPUs gets CPUs its workers could not use by adding one (local, 1 worker
 * waiting for a CPU 41% of its time: 8,500 req/s at best; 2 workers:
 * 17,100).
 *
 * The signals, per window: requests answered per second (rate); workers
 * busy on average (busy: the time the scoreboard's phases add up to, or
 * the states sampled every PM_SAMPLE_MS when the workers time no phases),
 * and of them those waiting for a CPU (run_wait), the rest being the
 * workers at work; connections waiting in the listening socket's accept
 * queue, on average (queue; nginx's kept connections hide the wait from
 * it, busy does not); the machine's idle CPU share.  On the shared
 * machine the rate at one size varied by 6-43% from second to second
 * (standard deviation over mean), in spells of several seconds, the
 * workers busy by 1-10%: other work lengthens every request, and the
 * rate with it, but leaves the workers busy.  Other work only ever slows
 * a second down, so a measurement's rate is its fastest second (best):
 * the fastest seconds of each size, over a sweep, drew the curve the
 * quiet machine draws (measured-facts.md).
 *
 * A measurement is PM_MEASURE whole windows at one size (more, up to
 * PM_MEASURE_MAX, until PM_JUDGE_REQUESTS requests were answered), taken
 * after the pool has reached that size and one more window has passed
 * (new workers connect, caches warm).  Measurements never overlap a
 * change.  From each:
 *
 *   requests wait    queue >= PM_QUEUE or busy >= PM_UTIL_GROW of the
 *                    workers: try a bigger size (a probe): twice, or a
 *                    quarter more (a worker per CPU at least: one more
 *                    among two CPUs is lost in the noise) when the pool
 *                    is CPU-bound, near the knee where a big step costs
 *                    while it is judged and buys little; with workers
 *                    idle, no more than the waiting work needs at
 *                    PM_UTIL_SHRINK.  Doubling makes each probe's effect
 *                    large against the noise, and reaches 32 from 2 in
 *                    four probes, 3 s each.
 *
 * A probe is judged by the next measurement against the last one before
 * it (its best second the better of that one's and the one's before it
 * at the same size, under the same load, as the probe's is the better of
 * two looks when the first says no: a slow base made 64 look 99% better
 * than 32 on /queries 1 ms away): kept if the busy workers grew by PM_TOOK of
 * the workers added (scaled by the share busy before: the added workers found
 * work) and the best second rose by PM_GAIN (they did not just wait longer:
 * /queries with the database 1 ms away kept 4 workers busy or 64 at much the
 * same rate, PostgreSQL's CPU the limit); a rise of PM_GAIN_ALONE keeps it with
 * PM_TOOK_NEAR of the busy count asked (a count that falls just short
 * beside a clear rise is noise).  When the added workers were nearly all
 * kept busy (PM_BUSY_ALL) and the pool is not CPU-bound, the rate need
 * only not fall by PM_GAIN (the busy count is the surer sign, the rate's
 * noise what could undo a good probe).  An open load, where the rate is
 * the clients' and the wait what workers buy, passes with the queue down
 * to a quarter; a measurement of fewer than PM_FEW_REQUESTS requests, on
 * the busy count alone.  A first look that says no is followed by a
 * second, the better of the two figures kept; two noes: the pool goes
 * back, and the size it tried is the ceiling.  A kept size is the floor
 * of the trim below.  A load that fell away meanwhile (the new size's
 * busy below what the old one could hold) leaves the new size, for
 * idleness to undo.
 *
 * A probe undone whose added workers found work (busy grew by what was
 * wanted) has shown that what they wait for is the limit, a database out
 * of CPU, and fewer workers may then serve as well, with less waiting
 * (/queries 1 ms away: much the same rate from 8 workers to 64, and p99
 * at 16 twice 4's): the pool goes back and below, to half the size the
 * probe came from (a worker per CPU at least), judged against the
 * measurement before the probe; while the best second holds within
 * PM_GAIN of the best seen so far, half again; the first size that loses
 * (two looks) sends it back to the last that held, the floor (at the
 * first look when it lost PM_LOST: back is the side known to hold).  A
 * size that was itself kept for a rise of PM_GAIN over the one below,
 * under this load (its best second within PM_CONTEXT), is not descended
 * from: the climb measured that fewer lose.  A probe kept at
 * --workers-max, where no probe above can undo it, starts a descent below
 * the size it came from, judged against its own measurement, under a
 * ceiling at the max (/queries 1 ms away: 64 kept over 32 for +13% in the
 * noise, 0.88 of 8's rate, and it stayed).
 *
 * Fewer needed: when for --idle-timeout every window needed fewer
 * workers than the pool has (the workers at work plus the queue, at
 * PM_UTIL_SHRINK), the pool shrinks to the most any of them needed, in one
 * step, down to --workers-min, or to the floor while the load is what it
 * was: it is taken to have changed when half the pool or less was needed.
 * Counting the workers at work, not those waiting for a CPU, is what
 * brings a CPU-bound pool down (local: 2-3 at work of 6 busy; 64 kept
 * with the database 5 ms away, then the database local), and an idle pool
 * to its minimum after one --idle-timeout.  It also cuts a pool the climb
 * measured, when most of its workers wait for a CPU (/db 1 ms away: 32,
 * kept over 16 for +140%, went to 15, which answered as much in the
 * sweeps).
 *
 * Why it converges: every change is a probe, judged once and kept or
 * undone, or a shrink to what was measured as needed.  A climb under a
 * steady load doubles until a probe buys nothing (at most log2(max/min)
 * probes) and goes back one step, or further down while fewer serve as
 * well: one change of direction; the step back up from a descent's first
 * loss, or a shrink to what the load needs, is the second, at most.  Why it
 * does not oscillate: a ceiling, once found, stops every probe (a smaller step
 * than the one that bought nothing would buy less) while the load stays what it
 * was: the best second at the current size within PM_CONTEXT times the one the
 * ceiling was found at, the queue no more than twice as deep (a load that grew
 * while every worker was busy shows there only), and, for a ceiling found with
 * the pool CPU-bound, the CPUs still the limit (the database moved away: 2
 * workers answered 3,100 req/s of /queries with it local, 1,650 of /db with it
 * 1 ms away, a fall of less than PM_CONTEXT, the CPUs then three quarters
 * idle; or, at the size it was found from, its workers waiting for a CPU a
 * third as much as then, the machine's CPUs perhaps busy with other work);
 * PM_CONTEXT_N measurements in a row out of it forget ceiling and floor (two
 * far out, the rate off by PM_CONTEXT squared or the CPUs half idle, are
 * enough), as a shrink to half the pool or less does, and a ceiling lapses
 * after PM_HOLD_MS, doubled each time the same ceiling is found again, up to
 * PM_HOLD_MAX_MS.  The trim stops at the floor, so that it cannot undo what a
 * probe measured and start the climb again.  And growing (at PM_UTIL_GROW busy,
 * or a queue) and shrinking (below PM_UTIL_SHRINK, for a whole --idle-timeout)
 * are far apart, so a load between them moves nothing. Growing is fast and
 * shrinking slow, as requests that wait cost more than workers that idle.
 *
 * How well, on traces recorded on the shared machine (test_pm.c replays
 * each from 8 starting seconds): /db 1 ms away at the best size, 32, in 7
 * of 8 (16 in one, whose 32's seconds fell in a busy spell); /db local
 * at 2, the best, in all; /queries at 0.78 to 1 of the best; /queries
 * after /db on the same pool (the bench's order), 0.93 of the best on
 * average, down from 32 to 8 in 2 replays of 8 (the trace answers as much
 * at 32 and 64, and slow spells at 16 and 32 end the descent), within 21 s
 * of the change; /db 1 ms away after /queries local, up from 2-6 to 24-32 in
 * all 8, within 30 s.
 *
 * What it does not do: find a size between two powers of two (the best
 * fixed count of a sweep is one of those too); shrink a pool that is too
 * big while every worker is busy under a ceiling: the descent follows an
 * undone probe, or one kept at --workers-max, and a restart or SIGTTOU
 * brings such a pool down.
 */
#ifndef PM_H
#define PM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* In --pm's order. */
enum pm_mode { PM_STATIC, PM_DYNAMIC, PM_ONDEMAND, PM_AUTO };

/* The gauge's sampling period and a window, in ms. */
#define PM_SAMPLE_MS 100
#define PM_WINDOW_MS 1000
/* Windows in a measurement: at least, and at most when requests are few. */
#define PM_MEASURE 2
#define PM_MEASURE_MAX 5
#define PM_JUDGE_REQUESTS 200
/* Fewer requests than this in a measurement: the rate says nothing. */
#define PM_FEW_REQUESTS 20
/* A probe is kept when the workers at work grew by this share of the
 * workers added (times the share at work before), and the rate rose by
 * PM_GAIN. */
#define PM_TOOK 0.5
#define PM_GAIN 0.1
/* A rise of the rate this large keeps a probe whose added workers were
 * kept busy by nearly what PM_TOOK asks, PM_TOOK_NEAR of it (8 -> 16 at
 * 1 ms: +42%, 3.8 more busy where 4.0 were wanted, was undone). */
#define PM_GAIN_ALONE 0.25
#define PM_TOOK_NEAR 0.8
/* A descent's step that loses this much is undone at its first look. */
#define PM_LOST 0.25
/* Kept busy nearly all (this many times PM_TOOK of the workers added),
 * outside a CPU-bound pool, a probe need only not lose more than
 * PM_GAIN. */
#define PM_BUSY_ALL 1.5
/* Requests wait: a mean queue this deep, or this share of workers busy. */
#define PM_QUEUE 0.5
#define PM_UTIL_GROW 0.9
/* The busy share an idle shrink, or the step's cap, sizes the pool to. */
#define PM_UTIL_SHRINK 0.7
/* CPU-bound: the machine's CPU busier than this, and the workers
 * waiting for one this share of their busy time. */
#define PM_CPU_BUSY 0.9
#define PM_RUN_WAIT 0.25
/* A rate this many times the ceiling's, or this many times less: the
 * load or the database changed (the best second of a measurement at one
 * size varied by half on the shared machine). */
#define PM_CONTEXT 2.0
/* ... in this many measurements in a row; one far off (the rate off by
 * PM_CONTEXT squared, the CPUs half idle under a ceiling they set)
 * counts PM_CONTEXT_FAR: two in a row. */
#define PM_CONTEXT_N 5
#define PM_CONTEXT_FAR 3
/* How long a ceiling holds, first and at most. */
#define PM_HOLD_MS (300 * 1000L)
#define PM_HOLD_MAX_MS (3600 * 1000L)
/* A reason, one line. */
#define PM_WHY_MAX 192

struct pm_config {
    enum pm_mode mode;
    int start;                /* -w: the size at start */
    int min, max;             /* --workers-min, --workers-max */
    int spare_min, spare_max; /* dynamic */
    long idle_ms;             /* --idle-timeout */
    int cpus;                 /* the CPUs the workers may run on */
};

/* One window, as the gauge measured it. */
struct pm_window {
    int64_t end_ms;    /* CLOCK_MONOTONIC, at its end */
    int span_ms;       /* its length */
    int workers;       /* serving at its end */
    int moving;        /* workers starting or stopping at its end */
    uint64_t requests; /* answered during it */
    double busy;       /* workers serving a request, on average */
    int busy_max;      /* the most seen serving at one sample */
    double db;         /* of which in the database phase */
    double queue;      /* connections waiting to be accepted, on average */
    int queue_max;     /* the deepest sample */
    double cpu_idle;   /* the machine's idle CPU share; < 0: unknown */
    double run_wait;   /* workers waiting for a CPU, on average; < 0: unknown */
};

/* What a measurement (a few windows at one size) says, per second. */
struct pm_measure {
    int windows;
    double span_s, requests;
    double rate, busy, db, queue, cpu_idle, run_wait;
    double best; /* the highest rate of a window in it */
};

/* The controller's state: opaque but for the target. */
struct pm {
    struct pm_config cfg;
    int target;
    int settling;          /* the next steady window is a warm-up */
    struct pm_measure acc; /* the measurement under way (sums) */
    double cpu_idle_span;  /* of acc: seconds whose CPU idle is known */
    double run_wait_span;  /* and whose run wait is */
    /* auto: the probe under judgment, from size probe_from: 1, a bigger
     * size; -1, a smaller one (a descent: probe_from is the last size
     * that held, base the measurement at the size it began from). */
    int probing;
    int probe_from;
    struct pm_measure base;  /* the measurement before it */
    int looks;               /* 1: the first look said no; a second */
    struct pm_measure first; /* the first look */
    int ceiling;             /* no better at; 0: unknown */
    int floor;               /* the last size a probe was kept at */
    int floor_rose;          /* for a rise of the rate, over the size below */
    double floor_rate;       /* the best second it was kept at */
    double ceiling_rate, ceiling_queue;
    int ceiling_cpu;    /* found with the pool CPU-bound */
    int ceiling_from;   /* the size of the measurement it was found over */
    double ceiling_run; /* and its workers' share waiting for a CPU */
    int64_t ceiling_until_ms;
    int last_ceiling; /* the ceiling found before: the hold doubles */
    long hold_ms;
    int context_off;  /* measurements in a row off the ceiling's rate */
    int last_size;    /* the size of the last measurement decided on */
    double last_best; /* and its best second */
    /* Idleness: since when every window needed fewer than target
     * workers, and the most one needed (-1: none yet). */
    int64_t calm_since_ms;
    int calm_need;
};

/* pm_init: the controller for cfg, at cfg->start workers.  cfg is
 * copied; min <= start <= max. */
void pm_init(struct pm *pm, const struct pm_config *cfg);

/*
 * pm_step: one window more.  Results: the target, which differs from the
 * one before only when the window changed it; then why holds the reason,
 * one line without the sizes ("requests wait: ..."), else why is left
 * alone.
 */
int pm_step(struct pm *pm, const struct pm_window *w, char *why, size_t len);

/*
 * pm_set: the target set from outside (SIGTTIN, SIGTTOU), clamped to
 * min and max (static: to 1 and max).  What auto had learnt (the probe,
 * ceiling and floor) is forgotten: the hand knows something it does not.
 * Results: the target.
 */
int pm_set(struct pm *pm, int target);

/*
 * pm_wake: a connection waits and no worker runs (target 0): one starts
 * now rather than at the window's end.  Results: the target; why as for
 * pm_step.
 */
int pm_wake(struct pm *pm, char *why, size_t len);

/* pm_mode_name: "static", "dynamic", "ondemand" or "auto". */
const char *pm_mode_name(enum pm_mode mode);

/*
 * The report: what the status page shows of the sizing, in memory the
 * supervisor shares with its status process.  The supervisor writes it
 * (pm_report_write: at start and after every change), the status process
 * reads it whole (pm_report_read, under a sequence counter: odd while it
 * is written) and counts the current workers itself.
 */
struct pm_report {
    _Atomic uint32_t seq;
    int32_t mode, target, current, min, max;
    int32_t from;         /* the target before the last change */
    int64_t changed_unix; /* wall clock of the last change; 0: none yet */
    char why[PM_WHY_MAX]; /* its reason, as the log line gives it */
};

/* A copy of the report, read whole. */
struct pm_view {
    enum pm_mode mode;
    int target, current, min, max, from;
    int64_t changed_unix;
    char why[PM_WHY_MAX];
};

/* pm_report_write: v into r.  pm_report_read: r into v, whole (it retries
 * while the writer is at it, a few times, then takes what it has). */
void pm_report_write(struct pm_report *r, const struct pm_view *v);
void pm_report_read(const struct pm_report *r, struct pm_view *v);

/*
 * pm_report_line: the report as one line, without a trailing newline:
 * "8 workers, wanted 8 (auto, 1..64); 4 -> 8 12 s ago: requests wait: ..."
 * (now_unix gives the age).  Results: what snprintf returns.
 */
int pm_report_line(const struct pm_view *v, int64_t now_unix, char *buf,
                   size_t len);

#endif
