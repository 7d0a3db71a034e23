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
#include <time.h>
#include <unistd.h>

#include "opt.h"

/* 64 bytes, so that two workers never share a cache line.  Fields are C11
 * atomics so that a reader in another process sees whole values; no lock
 * is taken on the request path. */
struct sb_slot {
    _Atomic int32_t pid;
    _Atomic int32_t state;         /* enum sb_state */
    _Atomic int64_t busy_since_ns; /* CLOCK_MONOTONIC; 0 unless SB_BUSY */
    _Atomic uint64_t requests;     /* served since this worker started */
    _Atomic int64_t started_ns;    /* CLOCK_MONOTONIC at fork */
    char pad[32];
};

struct sb_header {
    uint32_t magic;
    uint32_t nslots;
    char pad[56];
};

_Static_assert(sizeof(struct sb_slot) == 64, "slot is one cache line");
_Static_assert(sizeof(struct sb_header) == 64, "header is one cache line");

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

void
sb_slot_reset(struct sb_slot *slot, enum sb_state state, int64_t now)
{
    atomic_store(&slot->pid, 0);
    atomic_store(&slot->busy_since_ns, 0);
    atomic_store(&slot->requests, 0);
    atomic_store(&slot->started_ns, now);
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
    return s >= SB_EMPTY && s <= SB_READING ? (enum sb_state)s : SB_EMPTY;
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
sb_set_state(struct sb_slot *slot, enum sb_state state)
{
    if (slot == NULL)
        return;
    atomic_store_explicit(&slot->busy_since_ns,
                          state == SB_BUSY ? sb_now_ns() : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&slot->state, state, memory_order_release);
}

void
sb_request_done(struct sb_slot *slot)
{
    if (slot != NULL)
        atomic_fetch_add_explicit(&slot->requests, 1, memory_order_relaxed);
}

/* env_long: a variable holding a number in [0, max]. */
static int
env_long(const char *name, long max, long *out)
{
    const char *s = getenv(name);

    return s == NULL ? -1 : opt_long(s, 0, max, out);
}

struct sb_slot *
sb_attach_env(void)
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
    return (struct sb_slot *)((struct sb_header *)p + 1) + slot;
}

int64_t
sb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
