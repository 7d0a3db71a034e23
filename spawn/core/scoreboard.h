/*
 * scoreboard.h: the pool's shared table of workers.
 *
 * The supervisor creates the scoreboard before forking (a memfd mapped
 * MAP_SHARED, its size sealed), and hands it to each worker across exec()
 * as an inherited
 * file descriptor named by the TFB_SCOREBOARD_FD environment variable, with
 * the worker's row in TFB_WORKER_SLOT.  A worker writes only its own slot;
 * the supervisor reads every slot (request time limit, status) and resets a
 * slot before reusing it.  Fields are C11 atomics so that readers in another
 * process see whole values; no lock is taken on the request path.
 *
 * The scoreboard is also the pool's one way to tell its workers what they
 * need from it, whatever the application: the request time limit, in the
 * header, and each worker's max-requests, in its slot, both written before
 * the worker is forked (sb_set_request_limit, sb_set_max_requests).  The
 * worker reads them at its start and applies its own policy (tfb-fcgi sets
 * PostgreSQL's statement_timeout below the limit, and leaves after that
 * many requests).  The supervisor sets no other variable for its workers.
 *
 * A worker started by anything else (plain spawn-fcgi, multiwatch, lighttpd,
 * systemd) finds no variable and runs without a scoreboard: no limit, no
 * max-requests from a pool.
 *
 * What a slot holds outlives its worker in part: the counters of its
 * past workers are its totals (sb_totals), and its histograms of request
 * and phase durations (sb_route_hist, sb_phase_hist) count for the
 * scoreboard's life, so that the status page's counters never go down
 * when a worker is recycled and a graph can label them by slot.  A
 * worker also says there how its database is (sb_db_*), for the health
 * answer and the page.
 */
#ifndef SCOREBOARD_H
#define SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

#define SB_ENV_FD "TFB_SCOREBOARD_FD"
#define SB_ENV_SLOT "TFB_WORKER_SLOT"
#define SB_MAGIC 0x54464234u /* "TFB4" */
#define SB_SLOT_SIZE 4096    /* a page: no two workers share a cache line */
#define SB_ROUTE_MAX 48      /* a route and its query, with the NUL */
/* The histograms: SB_BUCKETS - 1 upper bounds (sb_bucket_us), then +Inf. */
#define SB_BUCKETS 18
/* Route histograms per slot, the last one "other"; a route's name (its
 * label) is at most SB_LABEL_MAX - 1 bytes. */
#define SB_ROUTES 12
#define SB_LABEL_MAX 16
/* The last database error, one line, with its NUL. */
#define SB_DB_ERROR_MAX 240

enum sb_state {
    SB_EMPTY = 0, /* no worker in this slot */
    SB_STARTING,  /* forked, not yet accepting */
    SB_IDLE,      /* waiting for a connection or a request */
    SB_BUSY,      /* serving a request since busy_since_ns (phase unknown) */
    SB_EXITING,   /* leaving after its current request */
    SB_READING,   /* waiting, with part of a request read: not busy, the
                     read deadline runs */
    SB_DATABASE,  /* serving: in the database */
    SB_RENDERING, /* serving: in the application's own code */
    SB_WRITING    /* serving: writing the response */
    /* New states go last, so that the values above keep their meaning
     * between a supervisor and the workers of a rolling restart. */
};

/* sb_busy: a state of serving a request (the request time limit runs). */
#define sb_busy(s)                                                             \
    ((s) == SB_BUSY || (s) == SB_DATABASE || (s) == SB_RENDERING ||            \
     (s) == SB_WRITING)

/* The phases of a request, timed each: its indexes in the arrays below. */
enum sb_phase {
    SB_PHASE_READING,   /* from its first byte to its last */
    SB_PHASE_DATABASE,  /* waiting on PostgreSQL */
    SB_PHASE_RENDERING, /* the handler's own work */
    SB_PHASE_WRITING,   /* writing the response */
    SB_PHASES
};

/*
 * What a slot has counted since the scoreboard was made, for every worker
 * that has lived in it: the counters of struct sb_stats, summed over the
 * slot's workers.  These never go down, so that a pool's totals made of
 * them are counters a graph can take a rate of, recycles or not.
 */
struct sb_totals {
    uint64_t requests, accepted, reconnects, slow;
    uint64_t status[5];
    uint64_t phase_ns[SB_PHASES];
};

/*
 * A histogram of durations, as counted: bucket[i] counts the durations
 * within (sb_bucket_us[i - 1], sb_bucket_us[i]] (not cumulative, the last
 * one past every bound), sum_us their sum.
 */
struct sb_hist {
    uint64_t bucket[SB_BUCKETS];
    uint64_t sum_us;
};

/* The buckets' upper bounds in µs (50 µs .. 10 s), and as Prometheus' le
 * label values (in seconds, "+Inf" last). */
extern const uint32_t sb_bucket_us[SB_BUCKETS - 1];
extern const char *const sb_bucket_le[SB_BUCKETS];

/* The database, as the worker last found it. */
enum sb_db {
    SB_DB_NONE, /* not reported (a responder that reports none, or not yet) */
    SB_DB_UP,   /* connected */
    SB_DB_DOWN  /* the last attempt failed, or the connection was lost */
};

struct sb_db_view {
    enum sb_db state;
    int64_t since_unix;          /* wall clock, seconds: when it became so */
    int64_t since_ms;            /* the same, in milliseconds */
    uint64_t attempts;           /* connections tried by this worker */
    char error[SB_DB_ERROR_MAX]; /* the last failure, one line ("" none) */
};

/* A worker's counters and times, copied out of its slot. */
struct sb_stats {
    pid_t pid;
    enum sb_state state;
    int64_t started_ns, busy_since_ns;
    uint64_t requests, accepted, reconnects, slow;
    uint64_t status[5];           /* responses by class: 1xx .. 5xx */
    uint64_t phase_ns[SB_PHASES]; /* summed over every request */
    uint32_t last_us[SB_PHASES];  /* of the last request finished */
    uint32_t last_total_us;
    char route[SB_ROUTE_MAX]; /* being served, or the last one */
};

/* The pool's own counters, in the scoreboard's header. */
struct sb_pool {
    int64_t started_unix;          /* wall clock, seconds */
    int32_t active, max_active;    /* workers serving now, and at most */
    uint64_t max_children_reached; /* a SIGTTIN refused at --max-workers */
    int64_t request_limit_ms;      /* sb_set_request_limit's; 0: none */
};

/* One worker's row, opaque: a worker writes its own through the
 * functions below, the supervisor reads and resets them. */
struct sb_slot;

struct scoreboard;

/*
 * sb_create: map a new scoreboard of nslots empty slots.
 * Results: the scoreboard, or NULL with errno set.  Its fd is not
 * close-on-exec, so that workers inherit it.
 */
struct scoreboard *sb_create(int nslots);

/* sb_free: unmap and close; NULL is allowed. */
void sb_free(struct scoreboard *sb);

/*
 * sb_adopt: map the scoreboard another image of the supervisor made, on
 * the fd it handed over across exec() (SIGUSR2): its workers keep writing
 * their slots there.  It must be this build's kind (magic, size) with
 * nslots slots.  Results: the scoreboard, owning fd, or NULL (errno
 * EINVAL when it does not fit), fd left open.
 */
struct scoreboard *sb_adopt(int fd, int nslots);

/* sb_fd, sb_nslots: what the supervisor passes to its workers. */
int sb_fd(const struct scoreboard *sb);
int sb_nslots(const struct scoreboard *sb);

/* sb_slot: slot i (0 <= i < nslots). */
struct sb_slot *sb_slot(struct scoreboard *sb, int i);

/*
 * sb_slot_reset: the supervisor's side: an empty row in the given state,
 * started at now (CLOCK_MONOTONIC ns), pid unknown, database not
 * reported.  The worker that had the slot is gone: its counters move into
 * the slot's totals (sb_totals), and the histograms stay.
 */
void sb_slot_reset(struct sb_slot *slot, enum sb_state state, int64_t now);

/* sb_set_pid: the worker's pid, written by the supervisor and the child. */
void sb_set_pid(struct sb_slot *slot, pid_t pid);

/*
 * What a slot says.  sb_busy_since: when its request began, 0 unless busy.
 * Another process writes these: a reader checks them against what it knows
 * (sb_state turns a value out of range into SB_EMPTY).
 */
enum sb_state sb_state(const struct sb_slot *slot);
pid_t sb_pid(const struct sb_slot *slot);
int64_t sb_busy_since(const struct sb_slot *slot);
uint64_t sb_requests(const struct sb_slot *slot);

/* sb_stats: everything a slot says about its worker, for the status
 * page. */
void sb_stats(const struct sb_slot *slot, struct sb_stats *out);

/*
 * sb_totals: the slot's counters since the scoreboard was made (struct
 * sb_totals), read whole: a worker's counters move into them when the
 * supervisor resets its slot, and a read never sees them twice or not at
 * all.
 */
void sb_totals(const struct sb_slot *slot, struct sb_totals *out);

/*
 * sb_route_hist: the slot's request-duration histogram i (0 <= i <
 * SB_ROUTES), and its route's name into name (SB_LABEL_MAX bytes).
 * Results: 1, or 0 when no request has been counted under it yet.
 * sb_phase_hist: the slot's histogram of a phase's durations.  Both hold
 * every request the slot's workers timed since the scoreboard was made.
 */
int sb_route_hist(const struct sb_slot *slot, int i, char *name,
                  struct sb_hist *out);
void sb_phase_hist(const struct sb_slot *slot, enum sb_phase phase,
                   struct sb_hist *out);

/* sb_db: what the slot's worker last said of its database. */
void sb_db(const struct sb_slot *slot, struct sb_db_view *out);

/* sb_pool, sb_pool_max_children: the header's counters. */
void sb_pool(const struct scoreboard *sb, struct sb_pool *out);
void sb_pool_max_children(struct scoreboard *sb);

/*
 * What the pool tells its workers (see the top of this file); the
 * supervisor's side.  sb_set_request_limit: the request time limit in ms,
 * 0 (or less) for none, before the first fork.  sb_set_max_requests: the
 * requests the slot's next worker serves before it leaves (0: no limit
 * from the pool), after sb_slot_reset and before that worker's fork.
 */
void sb_set_request_limit(struct scoreboard *sb, int64_t ms);
void sb_set_max_requests(struct sb_slot *slot, uint64_t n);

/*
 * The worker's side of the same.  sb_request_limit_ms: the limit of the
 * pool whose scoreboard sb_attach_env() mapped; 0 when none, or without
 * a pool.  sb_max_requests: the slot's; 0 for NULL or without a pool.
 */
int64_t sb_request_limit_ms(void);
uint64_t sb_max_requests(const struct sb_slot *slot);

/*
 * sb_shed: the supervisor asks the slot's worker to close the connections
 * it holds, each once its request in progress is answered: the pool grew,
 * and a front server that keeps its connections (nginx's keepalive) would
 * otherwise keep sending every request to the workers it had.  Opened
 * again, the connections spread over the whole pool.  sb_take_shed: the
 * worker's side, once per turn of its loop: whether it was asked since
 * the last call (0 for NULL).
 */
void sb_shed(struct sb_slot *slot);
int sb_take_shed(struct sb_slot *slot);

/*
 * sb_attach_env: a worker's side.  Maps the scoreboard named by the
 * environment and returns this worker's slot.  A worker run by anything
 * else (no variable, or one that does not check out) gets a slot of its
 * own, in its own memory: its reports then serve only itself (the slow
 * log, Server-Timing).  The mapping lives until exit; sb_self() returns
 * the same slot afterwards.
 */
struct sb_slot *sb_attach_env(void);
struct sb_slot *sb_self(void);

/* sb_shared: the slot is a pool's, seen by its supervisor. */
int sb_shared(void);

/* sb_self_index: the slot's number in the pool's scoreboard, -1 when the
 * worker runs without a pool. */
int sb_self_index(void);

/*
 * The worker's own reports.  Each takes the slot sb_attach_env() gave,
 * NULL included (then nothing is reported).
 *
 *   sb_set_state       a state between requests (idle, reading, exiting);
 *                      SB_BUSY stamps a request's start (no phases)
 *   sb_accepted        a connection taken
 *   sb_request_begin   a request, whole since read_start_ns, goes to
 *                      route: the reading phase ends, rendering begins,
 *                      busy_since is stamped
 *   sb_phase           the request moves to another serving state; the
 *                      time of the one it leaves is added to its phase
 *   sb_request_phases  the current request's phase times so far, in µs
 *   sb_request_label   the request counts in the duration histogram of
 *                      the route named name[0, len) (a name of the
 *                      application's, never a client's path: at most
 *                      SB_ROUTES - 1 names, cut to SB_LABEL_MAX - 1
 *                      bytes; past those, and without this call, the
 *                      request counts as "other")
 *   sb_request_end     answered with HTTP status: the last phase ends, the
 *                      counters, last_us and the histograms are updated;
 *                      slow says it was over the slow threshold
 *   sb_reconnected     the database connection was made again
 *   sb_request_done    a request counted without phases
 *   sb_db_attempt      a database connection is being tried
 *   sb_db_up           it is made
 *   sb_db_down         it failed, or was lost: why[0, len) says why (libpq's
 *                      message: tabs, newlines and other control
 *                      characters become spaces, trailing ones go, and it
 *                      is cut to SB_DB_ERROR_MAX - 1 bytes)
 */
void sb_set_state(struct sb_slot *slot, enum sb_state state);
void sb_accepted(struct sb_slot *slot);
/*
 * sb_timing: per-phase timing on (the default) or off: off, a request is
 * only stamped busy and counted (what the request time limit needs), so
 * that the bench can measure what the rest costs.
 */
void sb_timing(int on);
void sb_request_begin(struct sb_slot *slot, int64_t read_start_ns,
                      const char *route, size_t route_len);
void sb_phase(struct sb_slot *slot, enum sb_state state);
void sb_request_phases(const struct sb_slot *slot, uint32_t us[SB_PHASES]);
void sb_request_label(struct sb_slot *slot, const char *name, size_t len);
void sb_request_end(struct sb_slot *slot, int status, int slow);
void sb_reconnected(struct sb_slot *slot);
void sb_request_done(struct sb_slot *slot);
void sb_db_attempt(struct sb_slot *slot);
void sb_db_up(struct sb_slot *slot);
void sb_db_down(struct sb_slot *slot, const char *why, size_t len);

/* sb_now_ns: CLOCK_MONOTONIC in nanoseconds, the scoreboard's clock. */
int64_t sb_now_ns(void);

#endif
