/*
 * sigtab.c: what each signal means; see sigtab.h.
 */
#define _GNU_SOURCE
#include "sigtab.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

#define SLOTS SIGTAB_SLOTS

volatile sig_atomic_t sigtab_noted[SLOTS];
static volatile sig_atomic_t pending;

/* supervisor: tfb-spawn's column of the README's table. */
static enum sigtab_do
supervisor(int signo)
{
    switch (signo) {
    case SIGHUP:  /* rolling restart */
    case SIGINT:  /* immediate stop */
    case SIGQUIT: /* graceful stop */
    case SIGTERM: /* graceful stop */
    case SIGUSR1: /* reopen the log, roll */
    case SIGUSR2: /* re-execute in place */
    case SIGTTIN: /* one worker more */
    case SIGTTOU: /* one worker fewer */
    case SIGCHLD: /* reap */
    case SIGALRM: /* our own timer */
    case SIGCONT: /* resumed: look at every clock */
        return SIGTAB_ACT;
    default:
        return SIGTAB_NOTE;
    }
}

/* worker: tfb-fcgi's column. */
static enum sigtab_do
worker(int signo)
{
    switch (signo) {
    case SIGHUP:  /* graceful stop: a reload replaces workers */
    case SIGQUIT: /* graceful stop */
    case SIGTERM: /* graceful stop */
    case SIGUSR1: /* reopen the log */
    case SIGXCPU: /* past RLIMIT_CPU's soft limit: leave, be replaced */
        return SIGTAB_ACT;
    case SIGINT:  /* the immediate stop, as Ctrl-C */
    case SIGCHLD: /* no children */
    case SIGCONT:
        return SIGTAB_DEFAULT;
    default:
        return SIGTAB_NOTE;
    }
}

enum sigtab_do
sigtab_action(int signo, enum sigtab_role who)
{
    switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGTRAP: /* a debugger's */
        return SIGTAB_DEFAULT;
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGABRT:
    case SIGSYS:
        return SIGTAB_CRASH;
    case SIGPIPE:
    case SIGXFSZ:
        return SIGTAB_IGNORE;
    default:
        break;
    }
    /* glibc keeps the first real-time signals for its threads. */
    if (signo < 1 || signo > SIGTAB_MAX || signo >= SLOTS ||
        (signo > SIGSYS && signo < SIGRTMIN))
        return SIGTAB_DEFAULT;
    return who == SIGTAB_SUPERVISOR ? supervisor(signo) : worker(signo);
}

const char *
sigtab_name(int signo, char *buf, size_t len)
{
    const char *abbrev;

    if (signo == SIGRTMIN)
        snprintf(buf, len, "RTMIN");
    else if (signo == SIGRTMAX)
        snprintf(buf, len, "RTMAX");
    else if (signo > SIGRTMIN && signo - SIGRTMIN <= SIGRTMAX - signo)
        snprintf(buf, len, "RTMIN+%d", signo - SIGRTMIN);
    else if (signo > SIGRTMIN && signo < SIGRTMAX)
        snprintf(buf, len, "RTMAX-%d", SIGRTMAX - signo);
    else if (signo == SIGIO) /* glibc says POLL; kill -l says IO */
        snprintf(buf, len, "IO");
    else if ((abbrev = sigabbrev_np(signo)) != NULL)
        snprintf(buf, len, "%s", abbrev);
    else
        snprintf(buf, len, "%d", signo);
    return buf;
}

const char *
sigtab_why(int signo, enum sigtab_role who)
{
    int sv = who == SIGTAB_SUPERVISOR;

    switch (signo) {
    case SIGUSR2:
        return "a worker has nothing to re-execute (tfb-spawn does)";
    case SIGTTIN:
    case SIGTTOU:
        return "the pool's size is tfb-spawn's";
    case SIGWINCH:
        return sv ? "gunicorn and nginx stop their workers on it, a step of "
                    "an upgrade beside the old master; SIGUSR2 upgrades in "
                    "place"
                  : "no terminal to redraw";
    case SIGTSTP:
        return sv ? "a stopped supervisor replaces no worker; SIGSTOP stops "
                    "it for real"
                  : "a stopped worker would hold its connections";
    case SIGXCPU:
        return "past RLIMIT_CPU's soft limit; the hard one ends it";
    case SIGALRM:
        return "no timer of ours";
    case SIGURG:
        return "no socket of ours asks for out-of-band data";
    default:
        return "no meaning here; its default action would end the process";
    }
}

void
sigtab_note(int signo)
{
    if (signo > 0 && signo < SLOTS) {
        sigtab_noted[signo] = sigtab_noted[signo] + 1;
        pending = 1;
    }
}

int
sigtab_pending(void)
{
    return pending;
}

void
sigtab_report(enum sigtab_role who)
{
    char name[16];
    int s, n;

    pending = 0;
    for (s = 1; s < SLOTS; s++) {
        if ((n = sigtab_noted[s]) == 0)
            continue;
        sigtab_noted[s] = 0;
        if (n == 1)
            log_info("SIG%s ignored: %s", sigtab_name(s, name, sizeof(name)),
                     sigtab_why(s, who));
        else
            log_info("SIG%s ignored (%d times): %s",
                     sigtab_name(s, name, sizeof(name)), n, sigtab_why(s, who));
    }
}
