/*
 * gauge.h: what the pool measures of itself, for its sizing (pm.h).
 *
 * The supervisor calls gauge_sample() every PM_SAMPLE_MS and
 * gauge_window() every PM_WINDOW_MS; the window is what pm_step() reads.
 * A window sums, for the workers that served through it:
 *
 *   requests   answered: the growth of each slot's count, read at the
 *              window's ends (a worker that left in between takes its
 *              last few requests with it);
 *   busy, db   the workers serving, and waiting on the database, on
 *              average: the time their phases add up to over the window
 *              (exact, once a request ends); when no phase moved (the
 *              workers time none, or a request outlasts the window), the
 *              states sampled;
 *   queue      connections waiting in the listening socket's accept queue,
 *              on average over the samples, and the deepest
 *              (listener_queue);
 *   cpu_idle   the machine's idle share of CPU time (/proc/stat: idle and
 *              iowait over all), -1 when unreadable;
 *   run_wait   the workers' time runnable but waiting for a CPU
 *              (/proc/PID/schedstat's second field), summed and divided
 *              by the window: how many workers wait for a CPU, on average.
 *
 * A slot counts only while it holds the pid the supervisor gives for it
 * (a slot another process wrote over is not believed), and from the
 * first sample that saw it there.  Reading costs a few system calls per
 * sample and three per worker per window.
 */
#ifndef GAUGE_H
#define GAUGE_H

#include <stdint.h>
#include <sys/types.h>

#include "pm.h"

struct scoreboard;
struct gauge;

/* gauge_new: a gauge for a scoreboard of nslots slots and the listening
 * socket listen_fd.  Results: it, or NULL (out of memory). */
struct gauge *gauge_new(struct scoreboard *sb, int listen_fd);

/* gauge_free: NULL is allowed. */
void gauge_free(struct gauge *g);

/*
 * gauge_sample: one look at the serving workers' states and the listen
 * queue.  pids[i] is the pid of the worker serving from slot i, 0 when
 * none does (starting, stopping, empty).  now: CLOCK_MONOTONIC ns.
 */
void gauge_sample(struct gauge *g, const pid_t *pids, int64_t now);

/*
 * gauge_window: the window since the last call (or gauge_new) into w,
 * and a new one begins.  pids as for gauge_sample; moving is how many
 * workers start or stop now.
 */
void gauge_window(struct gauge *g, const pid_t *pids, int moving, int64_t now,
                  struct pm_window *w);

/*
 * gauge_line: w as the debug log's line, "workers=4 moving=0 span=1000
 * requests=8855 busy=3.91 busy_max=4 db=2.40 queue=57.3 queue_max=60
 * cpu_idle=0.02 run_wait=0.05"; gauge_parse reads it back (the unit tests'
 * recorded traces are such lines).  Results: gauge_line, what snprintf
 * returns; gauge_parse, 0, or -1 when s is not such a line.
 */
int gauge_line(const struct pm_window *w, char *buf, size_t len);
int gauge_parse(const char *s, struct pm_window *w);

#endif
