/*
 * supervisor.h: the master process of the pool.
 *
 * The supervisor forks the workers and stays their parent, the way nginx's
 * master does: its signal handlers only set flags, it sleeps in
 * sigsuspend() between events, reaps with a WNOHANG loop and acts on the
 * flags in its loop.  Each worker gets the listening socket as fd 0, the
 * supervisor's environment as it is, and the scoreboard (scoreboard.h):
 * its slot, named by two variables, holds its own max-requests, and the
 * header the request time limit.  The supervisor knows no application: it
 * sets nothing else for its workers, which take what they need from the
 * scoreboard (or ignore it).  What the supervisor does, in short:
 *
 *   a worker dies       it is started again at once, or after a growing
 *                       backoff when it keeps dying within a second of its
 *                       start; exit status 2 (fatal configuration) leaves it
 *                       dead, and when every worker is so, the supervisor
 *                       exits 2 too;
 *   a request hangs     a worker busy on one request past the limit is
 *                       killed and replaced;
 *   SIGTERM, SIGQUIT    graceful stop: SIGTERM to every worker, which
 *                       finishes its request and leaves; SIGKILL to those
 *                       left when --graceful-timeout runs out;
 *   SIGINT              immediate stop: SIGINT to every worker (their
 *                       default action is to die), SIGKILL one second later;
 *   SIGHUP              rolling restart: start one new worker, wait until it
 *                       accepts, stop one old worker, and so on;
 *   SIGTTIN, SIGTTOU    one worker more, one fewer (gracefully);
 *   SIGUSR1             reopen --log-file, then roll the workers onto it;
 *   SIGUSR2             re-execute in place (upgrade.h): the binary at the
 *                       path we were started from, our argv, the same pid;
 *                       the sockets and the workers kept across the exec,
 *                       then replaced as SIGHUP does; a new binary that
 *                       fails `--check` with our options is not run, and
 *                       the pool goes on as it was;
 *   SIGCONT             resumed after a stop: the clocks are looked at;
 *   the rest            as sigtab.h says: logged and ignored, PIPE and XFSZ
 *                       ignored, the faults left to main.c (which removes
 *                       its files and dies of them).
 *
 * The supervisor's waits (its rows of the table of waits; the status
 * process's are at the top of status.c, a worker's in app/worker.h, the
 * database's in app/db.h), each with its bound, what happens when it
 * passes, and the test that holds it (tests/integration/pool_fake.py
 * unless named), or why none does:
 *
 *   wait                        bound                   when it passes
 *   --------------------------  ----------------------  --------------------
 *   sigsuspend(), the loop's    the one-shot timer      SIGALRM wakes it and
 *   sleep                       arm() sets to the next  the clock is acted
 *                               thing due below; none   on; with nothing due
 *                               when nothing is due     only a signal (a
 *                                                       death, a command)
 *                                                       can change anything
 *     test: the timed rows below
 *   waitpid()                   none: WNOHANG, after    -
 *                               SIGCHLD
 *     no test of its own: WNOHANG never waits; every replaced worker of
 *     the tests is reaped by it
 *   read() of the exec pipe     the child's execve()    (no timer: the child
 *   after fork()                or its failure; the     makes only local
 *                               pipe is close-on-exec   system calls first)
 *     no test of its own: every worker start of the tests reads it (EOF
 *     at the execve); a child that cannot execve writes errno at once
 *   a worker starting           --start-timeout (10 s)  counted as ready
 *                               to report accepting
 *     no test: a worker that never reports only paces a rolling restart;
 *     nothing waits on it but the next step of the roll
 *   a worker busy on one        --request-timeout       SIGKILL, replaced
 *   request                     (30 s; 0: none)         at once
 *     test: "a request stuck past the 1 s limit ends", "the stuck worker
 *     is replaced"
 *   a stopping worker           --graceful-timeout      SIGKILL
 *   (stop, roll, SIGTTOU)       (30 s)
 *     test: "SIGTERM with a stuck request: SIGKILL at the 1 s deadline"
 *   an immediate stop (SIGINT)  1 s                     SIGKILL
 *     test: "SIGINT: immediate stop, stuck request or not"
 *   the status process at a     none: it gets SIGKILL   -
 *   stop
 *     test: every fault test's "...: after deploy/stack stop, the stack,
 *     wrk and the helpers: nothing of it left" (tests/kit/scene.py; the
 *     stack's pool runs --status)
 *   a dead status process       restarted after 1 s     -
 *     test: tests/integration/test_status.py "the status process killed:
 *     started again, /status answers within"
 *   fork() failing              retried after 250 ms,   -
 *                               doubling to 30 s
 *     no test: fork() failing takes the machine's processes exhausted;
 *     the same backoff's crash loop: test_supervisor.c "the second start
 *     waited 250 ms", "the third 500 ms"
 *   flock() on PATH.lock        3 s (listener.h), in    exit 2, naming the
 *   (--bind, --status)          main() before the pool  holder's pid and name
 *     test: tests/spawn/core/test_listener.c "a lock held by another
 *     process: refused, not waited on", "naming the lock file and its
 *     holder"
 *   write() of a log line       none: a file takes it   (stderr on a pipe
 *                               at once                 nobody reads would
 *                                                       block the pool)
 *     no test: a file takes a write at once; --log-file is how the pool
 *     is run (deploy/stack, the systemd unit)
 *   tfb-spawn status            5 s in all (status.h)   exit 1, a message
 *     test: tests/spawn/supervisor/test_status.c "a status socket that
 *     never answers: given up in ... ms"
 *   SIGUSR2's dry run (the new  5 s                     SIGKILL; the pool
 *   binary's --check)                                   goes on unchanged
 *     test: tests/integration/test_ops_signals.py, usr2_refused (the
 *     new binary gone, or refusing the options: the pool goes on)
 *   SIGUSR2: the status         1 s for its reaping     exec all the same;
 *   process SIGKILLed                                   the new image reaps
 *     no test: a status process that ignores SIGKILL cannot be made
 *   flock() on PATH.lock at     3 s (listener.h)        the socket removed,
 *   the exit, to remove it                              the lock file left
 *     test: tests/spawn/core/test_listener.c "listener_close removes the
 *     socket and its PATH.lock"
 */
#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include <sys/types.h>

#include "upgrade.h"

struct config;

/* Whom the workers run as: the supervisor drops to it in each child. */
struct supervisor_creds {
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t groups[64]; /* supplementary groups */
    char name[64];    /* for the log */
};

/*
 * supervisor_run: run the pool described by cfg on listen_fd until it is
 * stopped.  argv[0] is resolved to path already (execve, no PATH search).
 * creds, when not NULL, is whom the workers run as; the supervisor keeps
 * its own identity, as nginx's master does, so that its housekeeping
 * (reopening the log root opened, removing the pid file and the socket
 * root made) still works.  status_fd, when not -1, is the status page's
 * listening socket: a status process (status.h) serves it, restarted if it
 * dies.  The caller has set up logging.
 * Results: the process's exit status: 0 after a stop, 2 when every worker
 * exited with status 2, 1 when the pool could not be set up.
 */
int supervisor_run(const struct config *cfg, int listen_fd, const char *path,
                   char *const argv[], const struct supervisor_creds *creds,
                   int status_fd);

/*
 * What SIGUSR2 needs to re-execute the supervisor, given once before
 * supervisor_run (without it SIGUSR2 is logged and ignored): our program,
 * resolved at start, so that a binary replaced since (a package upgrade
 * renames a new file over it) is the one run; the argv we were started
 * with (a copy: the title took the original's memory); the device and
 * inode of the socket files we bound (0: inherited, not ours to remove),
 * for the next image to remove them at its end.  adopt is what the
 * previous image handed over, or NULL: its scoreboard, its workers and
 * the pool's size are then taken over.
 */
struct supervisor_image {
    const char *exe;
    char *const *argv;
    struct upgrade_sock listen, status;
    const struct upgrade *adopt;
};

/* supervisor_image: img, which must outlive supervisor_run. */
void supervisor_image(const struct supervisor_image *img);

#endif
