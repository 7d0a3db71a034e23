/*
 * worker.h: the connection loop of one responder process.
 *
 * Every wait of a responder, its bound, and what happens when the bound
 * passes (the supervisor's and the status process's are spawn/'s).  A row
 * marked "db helper" is the database module's, "lock helper" the lock
 * file's: their owners fill them.
 *
 *   the wait                 its bound                 past it
 *   -----------------------  ------------------------  -----------------
 *   epoll_pwait (worker.c)   the earliest deadline     the connections
 *                            below, or the database's  past theirs are
 *                            next retry; with neither  closed; a signal
 *                            it waits for work         ends it at once
 *   accept4 on the pool's    never waits (O_NONBLOCK;  -
 *   listening socket         EAGAIN: another worker
 *                            took the connection)
 *   recv on a connection     never waits; a request    the connection is
 *                            whole within              closed
 *                            --read-timeout (5 s) of
 *                            its first byte (of the
 *                            accept, for the first);
 *                            records that complete no
 *                            request do not renew it
 *   sendmsg/send on a        never waits; the answer   the connection is
 *   connection               read by the peer within   closed (it reads
 *                            --write-timeout (5 s) of  no request
 *                            its first write; none     meanwhile)
 *                            read meanwhile
 *   a kept connection        --idle-timeout (120 s);   closed; the one
 *                            --max-conns reached: the  idle longest makes
 *                            one kept longest ago      room for a new one
 *   a request over           read to its end and       answered 413, then
 *   --request-max            dropped, within           closed; past 1 MiB
 *                            --read-timeout and 1 MiB  or the deadline,
 *                                                      closed
 *   one connection's turn    64 records and 64 KiB     it waits for the
 *                            per wake-up               next turn, the
 *                                                      others served first
 *   close on a connection    never waits (no           -
 *                            SO_LINGER)
 *   nanosleep after a        100 ms each, 600 in a     worker_run
 *   failed accept            row                       returns -1
 *   a log line (write(2) to  none: the log is a file   -
 *   stderr, --log-file)      (--log-file) or what
 *                            the starter gave
 *   SIGUSR1's reopen of      none: it names a regular  -
 *   --log-file (open(2))     file
 *   --access-log's writes    none: O_NONBLOCK, what    a line that finds
 *   (access.h)               the file does not take    no room in the
 *                            stays buffered (64 KiB),  buffer is dropped,
 *                            written within 1 s        counted
 *   db_connect at start and  db helper                 db helper
 *   the idle reconnect
 *   a route's queries (/db,  db helper                 db helper
 *   /queries, /fortunes,
 *   /updates, the cache)
 *   db_request_done          db helper                 db helper
 *   --bind's lock file       lock helper               lock helper
 *   (listener_open, flock)
 *
 * The database-free routes (/plaintext, /json) wait on nothing but the
 * rows above the database's.
 */
#ifndef WORKER_H
#define WORKER_H

#include "access.h"
#include "allow.h"
#include "handler.h"

struct worker_opts {
    int listen_fd;        /* the FastCGI listening socket, shared by the pool */
    long max_requests;    /* exit after this many (0: never) */
    struct allow allow;   /* front servers that may connect over TCP */
    long read_timeout_ms; /* a request arrives whole within this of its
                             first byte, or its connection is closed */
    long write_timeout_ms;     /* an answer is read within this of its first
                                  write, or its connection is closed */
    long idle_timeout_ms;      /* a kept connection idles at most this long */
    int max_conns;             /* connections held at once */
    size_t request_max;        /* bytes of one request's records, at most */
    const char *log_file;      /* reopened on SIGUSR1; NULL: stderr as it is */
    int server_timing;         /* answer with a Server-Timing header */
    long slow_ms;              /* log requests at least this slow (0: never) */
    struct access_log *access; /* a line per request; NULL: none */
};

/*
 * worker_run: hold connections, answer their requests one at a time, until
 * told to stop.
 *
 * SIGTERM, SIGQUIT and SIGHUP stop it gracefully: it accepts nothing more,
 * closes its kept connections, answers the requests still arriving (each
 * within the read timeout) and finishes writing the answers queued (each
 * within the write timeout), then returns; an idle worker returns at once.
 * Results: 0 when stopped or recycled (max_requests), -1 when the
 * listening socket failed for good (logged).
 */
int worker_run(struct handler_ctx *ctx, const struct worker_opts *opts);

#endif
