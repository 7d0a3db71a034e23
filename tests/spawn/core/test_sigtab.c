/*
 * test_sigtab.c: what each signal means (spawn/core/sigtab.c): every
 * signal from 1 to SIGRTMAX has a decision for the supervisor and for a
 * worker, none whose default action ends or stops a process is left to
 * it unless on purpose, the names, and the report of ignored ones.
 */
#include "../../../spawn/core/sigtab.c"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

/* ends_by_default: the default action terminates or stops the process. */
static int
ends_by_default(int s)
{
    switch (s) {
    case SIGCHLD:
    case SIGCONT:
    case SIGURG:
    case SIGWINCH:
        return 0;
    default:
        return 1;
    }
}

/*
 * test_every_signal: walks 1..SIGRTMAX.  A signal left to its default
 * action that would end or stop the process is allowed only where that
 * is the point: KILL and STOP (no choice), TRAP (a debugger's), INT in a
 * worker (the immediate stop), and glibc's two reserved real-time ones.
 */
static void
test_every_signal(void)
{
    int s, silent_sv = 0, silent_w = 0, n = 0;
    char name[16];

    for (s = 1; s <= SIGTAB_MAX; s++) {
        enum sigtab_do sv = sigtab_action(s, SIGTAB_SUPERVISOR);
        enum sigtab_do w = sigtab_action(s, SIGTAB_WORKER);
        int exempt = s == SIGKILL || s == SIGSTOP || s == SIGTRAP ||
                     (s > SIGSYS && s < SIGRTMIN);

        n++;
        if (sv == SIGTAB_DEFAULT && ends_by_default(s) && !exempt) {
            silent_sv++;
            printf("#   supervisor: SIG%s left to its default\n",
                   sigtab_name(s, name, sizeof(name)));
        }
        if (w == SIGTAB_DEFAULT && ends_by_default(s) && !exempt &&
            s != SIGINT) {
            silent_w++;
            printf("#   worker: SIG%s left to its default\n",
                   sigtab_name(s, name, sizeof(name)));
        }
    }
    ok(n == 64, "64 signals walked (%d)", n);
    is_int(silent_sv, 0, "no signal ends the supervisor by its default action");
    is_int(silent_w, 0, "nor a worker, but SIGINT, its immediate stop");
}

/* decide: whether sigtab decides want, for who, on each of the signals
 * listed, up to the first 0 (at most 12). */
static int
decide(enum sigtab_role who, enum sigtab_do want, const int *sigs)
{
    int all = 1, i;

    for (i = 0; i < 12 && sigs[i] != 0; i++)
        all &= sigtab_action(sigs[i], who) == want;
    return all;
}

#define SV SIGTAB_SUPERVISOR
#define W SIGTAB_WORKER
#define SIGS(...) ((const int[12]){__VA_ARGS__})

static void
test_decisions(void)
{
    ok(decide(SV, SIGTAB_ACT,
              SIGS(SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGTTIN,
                   SIGTTOU, SIGCHLD, SIGALRM, SIGCONT)),
       "the supervisor acts on HUP INT QUIT TERM USR1 USR2 TTIN TTOU "
       "CHLD ALRM CONT");
    ok(decide(SV, SIGTAB_NOTE,
              SIGS(SIGWINCH, SIGTSTP, SIGPWR, SIGRTMIN, SIGRTMAX)),
       "it logs and ignores WINCH, TSTP, PWR, the real-time ones");
    ok(decide(W, SIGTAB_NOTE, SIGS(SIGUSR2, SIGTTIN)) &&
           decide(W, SIGTAB_ACT, SIGS(SIGHUP, SIGXCPU)) &&
           decide(W, SIGTAB_DEFAULT, SIGS(SIGINT)),
       "a worker: USR2 and TTIN noted, HUP and XCPU stop it, INT its "
       "default");
    ok(decide(W, SIGTAB_IGNORE, SIGS(SIGPIPE)) &&
           decide(SV, SIGTAB_IGNORE, SIGS(SIGXFSZ)),
       "PIPE and XFSZ ignored without a word");
    ok(decide(SV, SIGTAB_CRASH, SIGS(SIGSEGV)) &&
           decide(W, SIGTAB_CRASH, SIGS(SIGABRT)),
       "the faults are faults");
    /* 0 ends a list: asked on its own. */
    ok(decide(SV, SIGTAB_DEFAULT, SIGS(SIGKILL)) &&
           sigtab_action(0, SV) == SIGTAB_DEFAULT &&
           decide(W, SIGTAB_DEFAULT, SIGS(SIGTAB_MAX + 1)),
       "KILL, 0 and past SIGRTMAX: nothing to decide");
}

static void
test_names(void)
{
    char b[16];

    is_str(sigtab_name(SIGUSR2, b, sizeof(b)), "USR2", "USR2");
    is_str(sigtab_name(SIGWINCH, b, sizeof(b)), "WINCH", "WINCH");
    is_str(sigtab_name(SIGIO, b, sizeof(b)), "IO", "IO, as kill -l says");
    is_str(sigtab_name(SIGRTMIN, b, sizeof(b)), "RTMIN", "RTMIN");
    is_str(sigtab_name(SIGRTMIN + 1, b, sizeof(b)), "RTMIN+1", "RTMIN+1");
    is_str(sigtab_name(SIGRTMAX - 1, b, sizeof(b)), "RTMAX-1", "RTMAX-1");
    is_str(sigtab_name(SIGRTMAX, b, sizeof(b)), "RTMAX", "RTMAX");
}

/* lines: how many lines text holds. */
static int
lines(const char *text)
{
    int n = 0;

    for (; *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

/* test_report: counted by the handler's side, one line each, then none. */
static void
test_report(void)
{
    char path[] = "/tmp/test_sigtab.XXXXXX", text[2048] = "";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;

    if (fd == -1 || saved == -1) {
        ok(0, "set-up: %s", strerror(errno));
        return;
    }
    log_init("test", LOG_INFO);
    ok(!sigtab_pending(), "nothing pending at first");
    sigtab_note(SIGWINCH);
    sigtab_note(SIGWINCH);
    sigtab_note(SIGPWR);
    ok(sigtab_pending(), "pending once noted");
    dup2(fd, STDERR_FILENO);
    sigtab_report(SIGTAB_SUPERVISOR);
    sigtab_report(SIGTAB_SUPERVISOR);
    dup2(saved, STDERR_FILENO);
    n = pread(fd, text, sizeof(text) - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    if (!ok(strstr(text, "SIGWINCH ignored (2 times): gunicorn") != NULL &&
                strstr(text, "SIGPWR ignored: no meaning here") != NULL,
            "a line for WINCH, counted, and one for PWR, saying why"))
        printf("#   got: %s\n", text);
    is_int(lines(text), 2, "and nothing more: a report clears the counts");
    ok(!sigtab_pending(), "nothing pending after");
    close(fd);
    close(saved);
    unlink(path);
}

int
main(void)
{
    test_every_signal();
    test_decisions();
    test_names();
    test_report();
    return done_testing();
}
