/*
 * sigtab.h: what each signal means to the supervisor and to a worker.
 *
 * One table, so that tfb-spawn, tfb-fcgi and the README cannot drift
 * apart, and so that a test can walk every signal from 1 to SIGRTMAX and
 * find none that ends a process silently.  Each signal gets one of:
 *
 *   SIGTAB_ACT      the program's own handler does something with it
 *                   (stop, roll, reopen, resize, re-execute...);
 *   SIGTAB_NOTE     caught, logged ("SIGWINCH ignored: ...") and ignored:
 *                   php-fpm or gunicorn give it a meaning we do not, or
 *                   its default action would kill the process for
 *                   nothing (USR2 in a worker, PWR, the real-time ones);
 *   SIGTAB_IGNORE   SIG_IGN, silently: PIPE (a failed write says it
 *                   already) and XFSZ (a log line about it would be
 *                   another write past the limit, and another signal);
 *   SIGTAB_CRASH    a fault (SEGV, BUS, ILL, FPE, ABRT, SYS): the
 *                   supervisor removes its files, then dies of it with
 *                   its core; a worker dies of it and is replaced;
 *   SIGTAB_DEFAULT  left alone: the default action is what we want
 *                   (INT in a worker, CHLD and CONT in a worker, TRAP
 *                   for debuggers) or the signal cannot be caught.
 *
 * Everything here is async-signal-safe: a handler may ask sigtab_action.
 */
#ifndef SIGTAB_H
#define SIGTAB_H

#include <signal.h>
#include <stddef.h>

enum sigtab_role { SIGTAB_SUPERVISOR, SIGTAB_WORKER };

enum sigtab_do {
    SIGTAB_DEFAULT,
    SIGTAB_ACT,
    SIGTAB_NOTE,
    SIGTAB_IGNORE,
    SIGTAB_CRASH
};

/* The highest signal number to walk: SIGRTMAX (a function in glibc);
 * arrays by signal number have SIGTAB_SLOTS rows (Linux has 64). */
#define SIGTAB_MAX SIGRTMAX
#define SIGTAB_SLOTS 65

/* sigtab_action: what signo (1..SIGTAB_MAX) means to who. */
enum sigtab_do sigtab_action(int signo, enum sigtab_role who);

/*
 * sigtab_name: "USR2", "RTMIN+3": the name without "SIG", into buf.
 * Results: buf.
 */
const char *sigtab_name(int signo, char *buf, size_t len);

/* sigtab_why: for a SIGTAB_NOTE signal, why it is ignored, in a phrase. */
const char *sigtab_why(int signo, enum sigtab_role who);

/*
 * sigtab_noted: the counts a handler keeps of SIGTAB_NOTE signals, by
 * number; sigtab_report logs one line per signal counted since the last
 * report (who names the role in the line) and clears the counts.  Not
 * from a handler: it logs.
 */
extern volatile sig_atomic_t sigtab_noted[];
void sigtab_report(enum sigtab_role who);

/*
 * sigtab_note: a handler's side: count signo.  Async-signal-safe.
 */
void sigtab_note(int signo);

/* sigtab_pending: some noted signal awaits sigtab_report. */
int sigtab_pending(void);

#endif
