/*
 * scoreboard.c: the pool's shared table of workers; see scoreboard.h.
 */
#define _GNU_SOURCE
#include "scoreboard.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "opt.h"

/* A histogram as the slot holds it (struct sb_hist's layout). */
struct hist {
    _Atomic uint64_t bucket[SB_BUCKETS];
    _Atomic uint64_t sum_us;
};

/* A counter the worker alone writes: a plain load and store, no locked
 * instruction, and a reader in another process still sees whole values. */
#define BUMP(field, n)                                                         \
    atomic_store_explicit(                                                     \
        &(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n),  \
        memory_order_relaxed)

/*
 * A slot: SB_SLOT_SIZE bytes, so that two workers never share a cache
 * line.  Fields are C11 atomics so that a reader in another process sees
 * whole values; no lock is taken on the request path.  The worker alone
 * writes its slot while it lives; the supervisor resets it when it is
 * gone.
 *
 * Three parts.  The worker's own, which sb_slot_reset empties for the
 * next one.  The slot's totals (ret_*): what its workers counted before
 * the current one, which sb_slot_reset adds to under a sequence counter
 * (odd while it writes) so that sb_totals never sees a worker's counts
 * twice or not at all.  And the histograms, which stay for the
 * scoreboard's life: their counts only go up, whoever works in the slot.
 */
struct sb_slot {
    union {
        struct {
            _Atomic int32_t pid;
            _Atomic int32_t state;         /* enum sb_state */
            _Atomic int64_t busy_since_ns; /* CLOCK_MONOTONIC; 0 unless busy */
            _Atomic uint64_t requests;     /* since this worker started */
            _Atomic int64_t started_ns;    /* CLOCK_MONOTONIC at fork */
            _Atomic uint64_t accepted;     /* connections taken */
            _Atomic uint64_t reconnects;   /* database connections remade */
            _Atomic uint64_t slow;      /* requests over the slow threshold */
            _Atomic uint64_t status[5]; /* by class, 1xx .. 5xx */
            _Atomic uint64_t phase_ns[SB_PHASES]; /* summed */
            _Atomic uint32_t last_us[SB_PHASES];  /* the last request's */
            _Atomic uint32_t last_total_us;
            int32_t cur_label; /* the request's route histogram */
            /* The request in progress, written by the worker only. */
            int64_t phase_since_ns; /* when its current phase began */
            uint64_t cur_ns[SB_PHASES];
            int64_t start_ns; /* its first byte: the total is timed apart */
            char route[SB_ROUTE_MAX]; /* for display: a torn read is
                                         harmless */
            /* The pool's word to this slot's worker, before its fork. */
            _Atomic uint64_t max_requests; /* 0: no limit from the pool */
            _Atomic uint32_t shed; /* close the connections held (sb_shed) */
            /* The database, as the worker last found it; error[] is
             * written between two increments of db_seq. */
            _Atomic int32_t db_state; /* enum sb_db */
            _Atomic uint32_t db_seq;
            _Atomic int64_t db_since_ms; /* wall clock */
            _Atomic uint64_t db_attempts;
            char db_error[SB_DB_ERROR_MAX];
            /* The slot's totals: its past workers' counts. */
            _Atomic uint32_t ret_seq;
            _Atomic uint64_t ret_requests, ret_accepted, ret_reconnects,
                ret_slow;
            _Atomic uint64_t ret_status[5];
            _Atomic uint64_t ret_phase_ns[SB_PHASES];
            /* The histograms, for the scoreboard's life. */
            char label[SB_ROUTES][SB_LABEL_MAX]; /* "" unused */
            struct hist route_hist[SB_ROUTES];
            struct hist phase_hist[SB_PHASES];
        };
        char size[SB_SLOT_SIZE];
    };
};

struct sb_header {
    uint32_t magic;
    uint32_t nslots;
    int64_t started_unix;
    _Atomic int32_t active;
    _Atomic int32_t max_active;
    _Atomic uint64_t max_children_reached;
    /* The pool's word to every worker, written before the first fork. */
    _Atomic int64_t request_limit_ms; /* 0: no limit */
    char pad[24];
};

_Static_assert(sizeof(struct sb_slot) == SB_SLOT_SIZE, "slot size");
_Static_assert(sizeof(struct hist) == sizeof(struct sb_hist), "histogram");

const uint32_t sb_bucket_us[SB_BUCKETS - 1] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
const char *const sb_bucket_le[SB_BUCKETS] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
    "0.005", "0.01",   "0.025",   "0.05",   "0.1",   "0.25",
    "0.5",   "1",      "2.5",     "5",      "10",    "+Inf"};
_Static_assert(sizeof(struct sb_header) == 64, "header is one cache line");

/* The worker's own slot and header, set by sb_attach_env; shared says
 * they are a pool's, not the worker's own memory. */
static struct sb_slot *self;
static struct sb_header *self_hdr;
static int shared;
static int self_index = -1;
/* Per-phase timing (sb_timing); off, a request is timed as a whole. */
static int timing = 1;

struct scoreboard {
    int fd;
    int nslots;
    size_t size;
    struct sb_header *hdr;
    struct sb_slot *slots;
};

static size_t
sb_size(int nslots)
{
    return sizeof(struct sb_header) + (size_t)nslots * sizeof(struct sb_slot);
}

struct scoreboard *
sb_create(int nslots)
{
    struct scoreboard *sb;
    void *p;

    if (nslots < 1) {
        errno = EINVAL;
        return NULL;
    }
    if ((sb = calloc(1, sizeof(*sb))) == NULL)
        return NULL;
    sb->nslots = nslots;
    sb->size = sb_size(nslots);
    /* No MFD_CLOEXEC: the workers inherit it across exec().  Its size is
     * sealed: a worker that shrank it would make the supervisor's next
     * read of a slot a SIGBUS. */
    if ((sb->fd = memfd_create("tfb-scoreboard", MFD_ALLOW_SEALING)) == -1)
        goto free_sb;
    if (ftruncate(sb->fd, (off_t)sb->size) == -1 ||
        fcntl(sb->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) ==
            -1)
        goto close_fd;
    p = mmap(NULL, sb->size, PROT_READ | PROT_WRITE, MAP_SHARED, sb->fd, 0);
    if (p == MAP_FAILED)
        goto close_fd;
    sb->hdr = p;
    sb->slots = (struct sb_slot *)(sb->hdr + 1);
    sb->hdr->magic = SB_MAGIC;
    sb->hdr->nslots = (uint32_t)nslots;
    sb->hdr->started_unix = (int64_t)time(NULL);
    return sb;

close_fd:
    close(sb->fd);
free_sb:
    free(sb);
    return NULL;
}

void
sb_free(struct scoreboard *sb)
{
    if (sb == NULL)
        return;
    munmap(sb->hdr, sb->size);
    close(sb->fd);
    free(sb);
}

struct scoreboard *
sb_adopt(int fd, int nslots)
{
    struct scoreboard *sb;
    struct sb_header hdr;
    struct stat st;
    void *p;

    if (nslots < 1 || pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
        hdr.magic != SB_MAGIC || hdr.nslots != (uint32_t)nslots ||
        fstat(fd, &st) == -1 || st.st_size != (off_t)sb_size(nslots)) {
        errno = EINVAL;
        return NULL;
    }
    if ((sb = calloc(1, sizeof(*sb))) == NULL)
        return NULL;
    sb->fd = fd;
    sb->nslots = nslots;
    sb->size = sb_size(nslots);
    p = mmap(NULL, sb->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        free(sb);
        return NULL;
    }
    sb->hdr = p;
    sb->slots = (struct sb_slot *)(sb->hdr + 1);
    return sb;
}

int
sb_fd(const struct scoreboard *sb)
{
    return sb->fd;
}

int
sb_nslots(const struct scoreboard *sb)
{
    return sb->nslots;
}

struct sb_slot *
sb_slot(struct scoreboard *sb, int i)
{
    assert(i >= 0 && i < sb->nslots);
    return &sb->slots[i];
}

/*
 * retire: the slot's worker is gone: its counters move into the slot's
 * totals, between two increments of ret_seq.  The supervisor alone calls
 * it (through sb_slot_reset), so no two run at once.
 */
static void
retire(struct sb_slot *slot)
{
    int i;

    atomic_fetch_add(&slot->ret_seq, 1); /* odd: being written */
    atomic_fetch_add(&slot->ret_requests, atomic_exchange(&slot->requests, 0));
    atomic_fetch_add(&slot->ret_accepted, atomic_exchange(&slot->accepted, 0));
    atomic_fetch_add(&slot->ret_reconnects,
                     atomic_exchange(&slot->reconnects, 0));
    atomic_fetch_add(&slot->ret_slow, atomic_exchange(&slot->slow, 0));
    for (i = 0; i < 5; i++)
        atomic_fetch_add(&slot->ret_status[i],
                         atomic_exchange(&slot->status[i], 0));
    for (i = 0; i < SB_PHASES; i++)
        atomic_fetch_add(&slot->ret_phase_ns[i],
                         atomic_exchange(&slot->phase_ns[i], 0));
    atomic_fetch_add(&slot->ret_seq, 1); /* even: whole again */
}

void
sb_slot_reset(struct sb_slot *slot, enum sb_state state, int64_t now)
{
    int i;

    retire(slot);
    atomic_store(&slot->pid, 0);
    atomic_store(&slot->busy_since_ns, 0);
    atomic_store(&slot->started_ns, now);
    for (i = 0; i < SB_PHASES; i++) {
        atomic_store(&slot->last_us[i], 0);
        slot->cur_ns[i] = 0;
    }
    atomic_store(&slot->last_total_us, 0);
    atomic_store(&slot->max_requests, 0);
    atomic_store(&slot->shed, 0);
    slot->route[0] = '\0';
    slot->cur_label = -1;
    atomic_fetch_add(&slot->db_seq, 1);
    atomic_store(&slot->db_state, SB_DB_NONE);
    atomic_store(&slot->db_since_ms, 0);
    atomic_store(&slot->db_attempts, 0);
    slot->db_error[0] = '\0';
    atomic_fetch_add(&slot->db_seq, 1);
    atomic_store(&slot->state, state);
}

void
sb_set_pid(struct sb_slot *slot, pid_t pid)
{
    if (slot != NULL)
        atomic_store_explicit(&slot->pid, (int32_t)pid, memory_order_relaxed);
}

enum sb_state
sb_state(const struct sb_slot *slot)
{
    int32_t s = atomic_load_explicit(&slot->state, memory_order_acquire);

    /* Written by another process: a value we do not know is no state. */
    return s >= SB_EMPTY && s <= SB_WRITING ? (enum sb_state)s : SB_EMPTY;
}

pid_t
sb_pid(const struct sb_slot *slot)
{
    return (pid_t)atomic_load_explicit(&slot->pid, memory_order_relaxed);
}

int64_t
sb_busy_since(const struct sb_slot *slot)
{
    return atomic_load_explicit(&slot->busy_since_ns, memory_order_relaxed);
}

uint64_t
sb_requests(const struct sb_slot *slot)
{
    return atomic_load_explicit(&slot->requests, memory_order_relaxed);
}

void
sb_stats(const struct sb_slot *slot, struct sb_stats *out)
{
    int i;

    out->pid = sb_pid(slot);
    out->state = sb_state(slot);
    out->started_ns = atomic_load(&slot->started_ns);
    out->busy_since_ns = atomic_load(&slot->busy_since_ns);
    out->requests = atomic_load(&slot->requests);
    out->accepted = atomic_load(&slot->accepted);
    out->reconnects = atomic_load(&slot->reconnects);
    out->slow = atomic_load(&slot->slow);
    for (i = 0; i < 5; i++)
        out->status[i] = atomic_load(&slot->status[i]);
    for (i = 0; i < SB_PHASES; i++) {
        out->phase_ns[i] = atomic_load(&slot->phase_ns[i]);
        out->last_us[i] = atomic_load(&slot->last_us[i]);
    }
    out->last_total_us = atomic_load(&slot->last_total_us);
    memcpy(out->route, slot->route, sizeof(out->route));
    out->route[sizeof(out->route) - 1] = '\0';
}

/* How many times a reader tries for a whole copy of what a writer is
 * changing; it cannot take longer than a few stores. */
#define READ_TRIES 1000

void
sb_totals(const struct sb_slot *slot, struct sb_totals *out)
{
    uint32_t seq;
    int i, n = 0;

    do {
        while ((seq = atomic_load(&slot->ret_seq)) & 1 && ++n < READ_TRIES)
            continue;
        out->requests =
            atomic_load(&slot->ret_requests) + atomic_load(&slot->requests);
        out->accepted =
            atomic_load(&slot->ret_accepted) + atomic_load(&slot->accepted);
        out->reconnects =
            atomic_load(&slot->ret_reconnects) + atomic_load(&slot->reconnects);
        out->slow = atomic_load(&slot->ret_slow) + atomic_load(&slot->slow);
        for (i = 0; i < 5; i++)
            out->status[i] = atomic_load(&slot->ret_status[i]) +
                             atomic_load(&slot->status[i]);
        for (i = 0; i < SB_PHASES; i++)
            out->phase_ns[i] = atomic_load(&slot->ret_phase_ns[i]) +
                               atomic_load(&slot->phase_ns[i]);
    } while (atomic_load(&slot->ret_seq) != seq && ++n < READ_TRIES);
}

static void
hist_read(const struct hist *h, struct sb_hist *out)
{
    int i;

    for (i = 0; i < SB_BUCKETS; i++)
        out->bucket[i] =
            atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

int
sb_route_hist(const struct sb_slot *slot, int i, char *name,
              struct sb_hist *out)
{
    assert(i >= 0 && i < SB_ROUTES);
    /* Written once, by a worker, before the first count under it. */
    memcpy(name, slot->label[i], SB_LABEL_MAX);
    name[SB_LABEL_MAX - 1] = '\0';
    if (name[0] == '\0')
        return 0;
    hist_read(&slot->route_hist[i], out);
    return 1;
}

void
sb_phase_hist(const struct sb_slot *slot, enum sb_phase phase,
              struct sb_hist *out)
{
    assert(phase >= 0 && phase < SB_PHASES);
    hist_read(&slot->phase_hist[phase], out);
}

void
sb_db(const struct sb_slot *slot, struct sb_db_view *out)
{
    uint32_t seq;
    int32_t state;
    int n = 0;

    do {
        while ((seq = atomic_load(&slot->db_seq)) & 1 && ++n < READ_TRIES)
            continue;
        state = atomic_load(&slot->db_state);
        out->since_ms = atomic_load(&slot->db_since_ms);
        out->attempts = atomic_load(&slot->db_attempts);
        memcpy(out->error, slot->db_error, sizeof(out->error));
        atomic_thread_fence(memory_order_acquire);
    } while (atomic_load(&slot->db_seq) != seq && ++n < READ_TRIES);
    out->error[sizeof(out->error) - 1] = '\0';
    out->since_unix = out->since_ms / 1000;
    /* Written by another process: a value we do not know is none. */
    out->state = state == SB_DB_UP || state == SB_DB_DOWN ? (enum sb_db)state
                                                          : SB_DB_NONE;
}

void
sb_pool(const struct scoreboard *sb, struct sb_pool *out)
{
    out->started_unix = sb->hdr->started_unix;
    out->active = atomic_load(&sb->hdr->active);
    out->max_active = atomic_load(&sb->hdr->max_active);
    out->max_children_reached = atomic_load(&sb->hdr->max_children_reached);
    out->request_limit_ms = atomic_load(&sb->hdr->request_limit_ms);
}

void
sb_pool_max_children(struct scoreboard *sb)
{
    atomic_fetch_add(&sb->hdr->max_children_reached, 1);
}

void
sb_set_request_limit(struct scoreboard *sb, int64_t ms)
{
    atomic_store(&sb->hdr->request_limit_ms, ms > 0 ? ms : 0);
}

void
sb_set_max_requests(struct sb_slot *slot, uint64_t n)
{
    atomic_store(&slot->max_requests, n);
}

int64_t
sb_request_limit_ms(void)
{
    int64_t ms;

    if (self_hdr == NULL)
        return 0;
    /* Written by another process: a negative value is no limit. */
    ms = atomic_load(&self_hdr->request_limit_ms);
    return ms > 0 ? ms : 0;
}

uint64_t
sb_max_requests(const struct sb_slot *slot)
{
    return slot != NULL ? atomic_load(&slot->max_requests) : 0;
}

void
sb_shed(struct sb_slot *slot)
{
    atomic_store_explicit(&slot->shed, 1, memory_order_relaxed);
}

int
sb_take_shed(struct sb_slot *slot)
{
    /* A load first: the exchange's cache line write only when asked. */
    return slot != NULL &&
           atomic_load_explicit(&slot->shed, memory_order_relaxed) != 0 &&
           atomic_exchange_explicit(&slot->shed, 0, memory_order_relaxed) != 0;
}

void
sb_set_state(struct sb_slot *slot, enum sb_state state)
{
    if (slot == NULL)
        return;
    atomic_store_explicit(&slot->busy_since_ns,
                          sb_busy(state) ? sb_now_ns() : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&slot->state, state, memory_order_release);
}

void
sb_accepted(struct sb_slot *slot)
{
    if (slot != NULL)
        atomic_fetch_add_explicit(&slot->accepted, 1, memory_order_relaxed);
}

/* phase_of: the phase a serving state's time counts to. */
static enum sb_phase
phase_of(int32_t state)
{
    switch (state) {
    case SB_DATABASE:
        return SB_PHASE_DATABASE;
    case SB_WRITING:
        return SB_PHASE_WRITING;
    default:
        return SB_PHASE_RENDERING;
    }
}

/* active_add: the pool's count of serving workers, and its maximum. */
static void
active_add(int d)
{
    int32_t now, max;

    if (self_hdr == NULL)
        return;
    now = atomic_fetch_add(&self_hdr->active, d) + d;
    max = atomic_load(&self_hdr->max_active);
    while (now > max &&
           !atomic_compare_exchange_weak(&self_hdr->max_active, &max, now))
        continue;
}

void
sb_timing(int on)
{
    timing = on;
}

void
sb_request_begin(struct sb_slot *slot, int64_t read_start_ns, const char *route,
                 size_t route_len)
{
    int64_t now;
    int i;

    if (slot == NULL)
        return;
    now = sb_now_ns();
    if (!timing) {
        /* What the request time limit needs, and nothing more. */
        atomic_store_explicit(&slot->busy_since_ns, now, memory_order_relaxed);
        atomic_store_explicit(&slot->state, SB_BUSY, memory_order_release);
        return;
    }
    for (i = 0; i < SB_PHASES; i++)
        slot->cur_ns[i] = 0;
    slot->cur_label = -1;
    slot->start_ns =
        read_start_ns > 0 && read_start_ns < now ? read_start_ns : now;
    slot->cur_ns[SB_PHASE_READING] = (uint64_t)(now - slot->start_ns);
    if (route_len >= sizeof(slot->route))
        route_len = sizeof(slot->route) - 1;
    memcpy(slot->route, route, route_len);
    slot->route[route_len] = '\0';
    slot->phase_since_ns = now;
    atomic_store_explicit(&slot->busy_since_ns, now, memory_order_relaxed);
    atomic_store_explicit(&slot->state, SB_RENDERING, memory_order_release);
    active_add(1);
}

void
sb_phase(struct sb_slot *slot, enum sb_state state)
{
    int32_t old;
    int64_t now;

    if (slot == NULL || !timing)
        return;
    old = atomic_load_explicit(&slot->state, memory_order_relaxed);
    if (!sb_busy(old) || old == (int32_t)state)
        return;
    now = sb_now_ns();
    slot->cur_ns[phase_of(old)] += (uint64_t)(now - slot->phase_since_ns);
    slot->phase_since_ns = now;
    atomic_store_explicit(&slot->state, state, memory_order_release);
}

void
sb_request_phases(const struct sb_slot *slot, uint32_t us[SB_PHASES])
{
    int64_t now = sb_now_ns();
    int32_t state;
    int i;

    for (i = 0; i < SB_PHASES; i++)
        us[i] = 0;
    if (slot == NULL)
        return;
    for (i = 0; i < SB_PHASES; i++)
        us[i] = (uint32_t)(slot->cur_ns[i] / 1000);
    /* The phase still running counts up to now. */
    state = atomic_load_explicit(&slot->state, memory_order_relaxed);
    if (sb_busy(state))
        us[phase_of(state)] +=
            (uint32_t)((uint64_t)(now - slot->phase_since_ns) / 1000);
}

/* label_find: the route histogram named name[0, len), claimed if new
 * and there is room; else the last one, "other". */
static int
label_find(struct sb_slot *slot, const char *name, size_t len)
{
    int i;

    if (len == 5 && memcmp(name, "other", 5) == 0)
        return SB_ROUTES - 1;
    if (len >= SB_LABEL_MAX)
        len = SB_LABEL_MAX - 1;
    for (i = 0; i < SB_ROUTES - 1; i++) {
        char *l = slot->label[i];

        if (l[0] == '\0') {
            memcpy(l, name, len);
            l[len] = '\0';
            return i;
        }
        if (strncmp(l, name, len) == 0 && l[len] == '\0')
            return i;
    }
    return SB_ROUTES - 1;
}

void
sb_request_label(struct sb_slot *slot, const char *name, size_t len)
{
    if (slot != NULL && timing && len > 0)
        slot->cur_label = label_find(slot, name, len);
}

/* observe: one duration into a histogram; the worker alone writes it. */
static void
observe(struct hist *h, uint32_t us)
{
    int i = 0;

    while (i < SB_BUCKETS - 1 && us > sb_bucket_us[i])
        i++;
    BUMP(h->bucket[i], 1);
    BUMP(h->sum_us, us);
}

void
sb_request_end(struct sb_slot *slot, int status, int slow)
{
    uint32_t total = 0, us;
    int i, c = status / 100 - 1;

    if (slot == NULL)
        return;
    if (!timing) {
        atomic_fetch_add_explicit(&slot->requests, 1, memory_order_relaxed);
        atomic_store_explicit(&slot->busy_since_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&slot->state, SB_IDLE, memory_order_release);
        return;
    }
    sb_phase(slot, SB_IDLE); /* closes the last phase, at phase_since_ns */
    /* The total is the clock's, from the first byte to the last written,
     * so that the status page can show that the phases account for it. */
    total = (uint32_t)((slot->phase_since_ns - slot->start_ns) / 1000);
    for (i = 0; i < SB_PHASES; i++) {
        us = (uint32_t)(slot->cur_ns[i] / 1000);
        atomic_fetch_add_explicit(&slot->phase_ns[i], slot->cur_ns[i],
                                  memory_order_relaxed);
        atomic_store_explicit(&slot->last_us[i], us, memory_order_relaxed);
        observe(&slot->phase_hist[i], us);
    }
    atomic_store_explicit(&slot->last_total_us, total, memory_order_relaxed);
    if (slot->cur_label < 0 || slot->cur_label >= SB_ROUTES)
        slot->cur_label = SB_ROUTES - 1;
    if (slot->cur_label == SB_ROUTES - 1 && slot->label[SB_ROUTES - 1][0] == 0)
        memcpy(slot->label[SB_ROUTES - 1], "other", 6);
    observe(&slot->route_hist[slot->cur_label], total);
    slot->cur_label = -1;
    if (c >= 0 && c < 5)
        atomic_fetch_add_explicit(&slot->status[c], 1, memory_order_relaxed);
    if (slow)
        atomic_fetch_add_explicit(&slot->slow, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->requests, 1, memory_order_relaxed);
    atomic_store_explicit(&slot->busy_since_ns, 0, memory_order_relaxed);
    active_add(-1);
}

void
sb_reconnected(struct sb_slot *slot)
{
    if (slot != NULL)
        atomic_fetch_add_explicit(&slot->reconnects, 1, memory_order_relaxed);
}

void
sb_request_done(struct sb_slot *slot)
{
    if (slot != NULL)
        atomic_fetch_add_explicit(&slot->requests, 1, memory_order_relaxed);
}

void
sb_db_attempt(struct sb_slot *slot)
{
    if (slot != NULL)
        BUMP(slot->db_attempts, 1);
}

/* db_set: the database's state, its time stamped when it changes, and
 * why (NULL: the last error stays). */
static void
db_set(struct sb_slot *slot, enum sb_db state, const char *why, size_t len)
{
    size_t i, n = 0;

    atomic_fetch_add(&slot->db_seq, 1); /* odd: being written */
    if (atomic_load_explicit(&slot->db_state, memory_order_relaxed) !=
        (int32_t)state) {
        atomic_store(&slot->db_state, state);
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        atomic_store(&slot->db_since_ms,
                     (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    }
    if (why != NULL) {
        for (i = 0; i < len && n < SB_DB_ERROR_MAX - 1; i++) {
            unsigned char c = (unsigned char)why[i];

            /* One line, whatever libpq said: a DETAIL, a HINT, a tab. */
            slot->db_error[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
        while (n > 0 && slot->db_error[n - 1] == ' ')
            n--;
        slot->db_error[n] = '\0';
    }
    atomic_fetch_add(&slot->db_seq, 1); /* even: whole again */
}

void
sb_db_up(struct sb_slot *slot)
{
    if (slot != NULL)
        db_set(slot, SB_DB_UP, NULL, 0);
}

void
sb_db_down(struct sb_slot *slot, const char *why, size_t len)
{
    if (slot != NULL)
        db_set(slot, SB_DB_DOWN, why != NULL ? why : "", why != NULL ? len : 0);
}

/* env_long: a variable holding a number in [0, max]. */
static int
env_long(const char *name, long max, long *out)
{
    const char *s = getenv(name);

    return s == NULL ? -1 : opt_long(s, 0, max, out);
}

/*
 * attach: map the scoreboard named by the environment, or NULL.
 */
static struct sb_slot *
attach(void)
{
    struct sb_header hdr;
    long fd, slot;
    void *p;
    size_t size;

    if (env_long(SB_ENV_FD, 1 << 20, &fd) == -1 ||
        env_long(SB_ENV_SLOT, 1 << 20, &slot) == -1)
        return NULL;
    if (pread((int)fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        return NULL;
    if (hdr.magic != SB_MAGIC || slot >= (long)hdr.nslots)
        return NULL;
    size = sb_size((int)hdr.nslots);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    close((int)fd); /* the mapping keeps the memory alive */
    if (p == MAP_FAILED)
        return NULL;
    self_hdr = p;
    self_index = (int)slot;
    return (struct sb_slot *)((struct sb_header *)p + 1) + slot;
}

struct sb_slot *
sb_attach_env(void)
{
    static struct {
        struct sb_header hdr;
        struct sb_slot slot;
    } own;

    if (self != NULL)
        return self;
    if ((self = attach()) != NULL) {
        shared = 1;
    } else {
        own.hdr.magic = SB_MAGIC;
        own.hdr.nslots = 1;
        own.hdr.started_unix = (int64_t)time(NULL);
        self_hdr = &own.hdr;
        self = &own.slot;
        sb_slot_reset(self, SB_STARTING, sb_now_ns());
    }
    return self;
}

struct sb_slot *
sb_self(void)
{
    return self;
}

int
sb_shared(void)
{
    return self != NULL && shared;
}

int
sb_self_index(void)
{
    return sb_shared() ? self_index : -1;
}

int64_t
sb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
