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
 * A worker started by anything else (plain spawn-fcgi, multiwatch, lighttpd,
 * systemd) finds no variable and runs without a scoreboard.
 */
#ifndef SCOREBOARD_H
#define SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

#define SB_ENV_FD "TFB_SCOREBOARD_FD"
#define SB_ENV_SLOT "TFB_WORKER_SLOT"
#define SB_MAGIC 0x54464231u /* "TFB1" */

enum sb_state {
    SB_EMPTY = 0, /* no worker in this slot */
    SB_STARTING,  /* forked, not yet accepting */
    SB_IDLE,      /* waiting for a connection or a request */
    SB_BUSY,      /* serving a request since busy_since_ns */
    SB_EXITING,   /* leaving after its current request */
    SB_READING    /* waiting, with part of a request read: not busy, the
                     read deadline runs (last, so the values above keep
                     their meaning across a rolling restart) */
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

/* sb_fd, sb_nslots: what the supervisor passes to its workers. */
int sb_fd(const struct scoreboard *sb);
int sb_nslots(const struct scoreboard *sb);

/* sb_slot: slot i (0 <= i < nslots). */
struct sb_slot *sb_slot(struct scoreboard *sb, int i);

/*
 * sb_slot_reset: the supervisor's side: an empty row in the given state,
 * started at now (CLOCK_MONOTONIC ns), pid unknown.
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

/*
 * sb_attach_env: a worker's side.  Maps the scoreboard named by the
 * environment and returns this worker's slot, or NULL when there is none
 * or it does not check out (wrong magic, slot out of range).  The mapping
 * lives until exit.
 */
struct sb_slot *sb_attach_env(void);

/*
 * The worker's own reports.  Each takes the slot sb_attach_env() gave,
 * NULL included (no scoreboard: nothing to report).  sb_set_state to
 * SB_BUSY stamps the request's start; sb_request_done counts it.
 */
void sb_set_state(struct sb_slot *slot, enum sb_state state);
void sb_request_done(struct sb_slot *slot);

/* sb_now_ns: CLOCK_MONOTONIC in nanoseconds, the scoreboard's clock. */
int64_t sb_now_ns(void);

#endif
