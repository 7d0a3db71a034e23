/*
 * page.h: what the status page says (page.c), for the status process's
 * server (status.c): the module's inside, under status.h.
 *
 * page.c reads the scoreboard and renders it: status_format_of and
 * status_render (status.h) are its own.  Beside them it keeps, in the
 * status process, what a single look cannot tell: the deepest listen
 * queue seen, and a second-by-second history of the pool's counters and
 * histograms (the last PAGE_WINDOW_S seconds), from which the page takes
 * its rates (requests/s, errors/s) and the quantiles of the last seconds.
 */
#ifndef PAGE_H
#define PAGE_H

#include <stdint.h>

#include "status.h"

/* How often the listen queue is looked at, in ms. */
#define PAGE_SAMPLE_MS 100
/* The window of the rates and recent quantiles, in seconds. */
#define PAGE_WINDOW_S 10

/*
 * page_sample: call every PAGE_SAMPLE_MS or so (now: CLOCK_MONOTONIC ns):
 * the listen queue is looked at for its maximum, and once a second the
 * pool's counters go into the history.  Allocates nothing.
 */
void page_sample(const struct status_info *info, int64_t now);

#endif
