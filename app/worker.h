/*
 * worker.h: the connection loop of one responder process.
 *
 * Every wait of a responder, its bound, what happens when the bound
 * passes, and the test that holds it to that (a file and its check's
 * words), or why none does.  The table of waits has three more parts: the
 * database's in db.h, the supervisor's in spawn/supervisor/supervisor.h,
 * the status process's at the top of spawn/supervisor/status.c.  Tests
 * named without a folder are in tests/app/ (C) or tests/integration/
 * (Python).
 *
 *   the wait                 its bound                 past it
 *   -----------------------  ------------------------  -----------------
 *   epoll_pwait (worker.c)   the earliest deadline     the connections
 *                            below, or the database's  past theirs are
 *                            next step (a host's       closed; a signal
 *                            deadline, the end of a    ends it at once
 *                            backoff); with neither
 *                            it waits for work
 *     test: test_worker.c "SIGTERM stops the idle worker: 0"; the
 *     deadlines: the rows below
 *   accept4 on the pool's    never waits (O_NONBLOCK;  -
 *   listening socket         EAGAIN: another worker
 *                            took the connection)
 *     no test of its own: non-blocking by construction (setup()); every
 *     test's connections are accepted by it
 *   recv on a connection     never waits; a request    the connection is
 *                            whole within              closed
 *                            --read-timeout (5 s) of
 *                            its first byte (of the
 *                            accept, for the first);
 *                            records that complete no
 *                            request do not renew it
 *     test: test_worker.c "the stream is closed at its 1 s read deadline,
 *     not renewed by its records"; test_deadlines.py "repro 3: the stream
 *     is closed at the 2 s read deadline" (the pool, then spawn-fcgi);
 *     test_fcgi_worker.py "a slow peer (...): closed at the 1 s read
 *     deadline"
 *   sendmsg/send on a        never waits; the answer   the connection is
 *   connection               read by the peer within   closed (it reads
 *                            --write-timeout (5 s) of  no request
 *                            its first write; none     meanwhile)
 *                            read meanwhile
 *     test: test_worker.c "the deaf peer is closed at the 500 ms write
 *     deadline"; test_deadlines.py "repro 2: the peer is closed by the 2 s
 *     write deadline" (the pool, then spawn-fcgi)
 *   a kept connection        --idle-timeout (120 s);   closed; the one
 *                            --max-conns reached: the  idle longest makes
 *                            one kept longest ago      room for a new one
 *     test: test_fcgi_worker.py "an idle kept connection: closed at the
 *     1 s idle deadline"; test_worker.c "--max-conns 256 reached by kept
 *     ones: a 257th client is served"; test_deadlines.py "repro 5:
 *     --max-conns 256 held by idle ones: a 257th client is served"
 *   a request over           read to its end and       answered 413, then
 *   --request-max            dropped, within           closed; past 1 MiB
 *                            --read-timeout and 1 MiB  or the deadline,
 *                                                      closed
 *     test: test_worker.c "a 70 KB body over --request-max: answered 413",
 *     "a request body without end: closed unanswered past 1 MiB";
 *     test_deadlines.py "FastCGI to the pool: a 70 KB body over
 *     --request-max answered 413"
 *   one connection's turn    64 records and 64 KiB     it waits for the
 *                            per wake-up               next turn, the
 *                                                      others served first
 *     test: test_worker.c "a stream of skipped records: a second client is
 *     served meanwhile in ... (under 100)"; tests/fuzz/fuzz_request.c, its
 *     flag bit 3 (a stream of records without end)
 *   close on a connection    never waits (no           -
 *                            SO_LINGER)
 *     no test: nothing sets SO_LINGER, so close() returns at once
 *   nanosleep after a        100 ms each, 600 in a     worker_run
 *   failed accept            row                       returns -1
 *     no test: it takes accept() failing for a minute on end (descriptors
 *     exhausted); the bound is a counter read in accept_one()
 *   a log line (write(2) to  none: the log is a file   -
 *   stderr, --log-file)      (--log-file) or what
 *                            the starter gave
 *     no test: a file takes a write at once; a pipe nobody reads is the
 *     starter's to avoid (tfb-spawn gives a file)
 *   SIGUSR1's reopen of      none: it names a regular  -
 *   --log-file (open(2))     file
 *   --access-log's writes    none: O_NONBLOCK, what    a line that finds
 *   (access.h)               the file does not take    no room in the
 *                            stays buffered (64 KiB),  buffer is dropped,
 *                            written within 1 s        counted
 *     test: test_access_log.py (the lines within 1.6 s; /dev/full: every
 *     request still answered, the dropped lines counted)
 *     no test of a bound: a regular file opens at once
 *   db_connect at start      --db-connect-timeout      the next host; after
 *   (main.c, before the      (2 s) each host, walked   the last the worker
 *   loop)                    one by one (db.h)         starts without one,
 *                                                      reconnecting below
 *     test: test_db.c "hosts a,b, a stalled: b, after a's bound",
 *     "a server that never answers: given up at the bound"
 *   the reconnection of a    never waits: one step     that host given up
 *   lost connection (the     per readiness of its      (the next, then the
 *   reads' and the writes'   socket, in this epoll     backoff); the
 *   handles)                 set, or at the host's     database routes
 *                            --db-connect-timeout      answer 503 at once
 *                                                      meanwhile
 *     test: test_worker.c "while both connections are made again on the
 *     stopped server, a /plaintext every 100 ms for 2 s: each served in
 *     under 100 ms", "resumed: the connections under way are made";
 *     test_deadlines.py "repro 4: /plaintext through nginx while the
 *     worker reconnects to the stopped database: at full speed",
 *     "repro 4: PostgreSQL resumed (SIGCONT): every route answers 200
 *     within 2 s"
 *   a route's statements     --db-timeout (5 s) each   503; the connection
 *   (/db, /queries,          answer (db.h), the        closed, the backoff
 *   /fortunes, /updates,     worker with them: one     starts and the
 *   the cache's fill)        request at a time         reconnection above
 *                                                      makes it again
 *     test: test_db.c "the server stopped: DB_UNAVAILABLE at its
 *     deadline", "the calls after it: DB_UNAVAILABLE at once";
 *     test_worker.c "/db: 503 at the 400 ms answer deadline", "and a /db
 *     each time: 503 at once"; test_deadlines.py "repro 4: /db answered
 *     503 at the 1 s --db-timeout", "the next /db answered 503 at once";
 *     test_cluster.py "primary SIGSTOPped: /updates answered 200 or 503
 *     ... each within 6.5 s"
 *   a request that finds no  --db-connect-timeout      503
 *   connection and none      each host: it connects
 *   under way (lost under    itself (db.h), as one
 *   the request before, in   that finds the backoff
 *   the same turn)           over before the loop did
 *     test: test_db.c "hosts a,b with a dead: connected to b", "the next
 *     read reconnects past the dead host"; test_fault_pg_restart.py
 *   db_request_done          never waits (per-request  -
 *                            mode: PQfinish on a non-
 *                            blocking socket)
 *     test: test_db.c "db_request_done closes the connection"
 *   --bind's lock file       3 s (listener.h), in      exit 2, naming the
 *   (listener_open, flock)   main() before the loop    holder's pid and
 *                                                      name
 *     test: tests/spawn/core/test_listener.c "a lock held by another
 *     process: refused, not waited on", "naming the lock file and its
 *     holder"
 *
 * The database-free routes (/plaintext, /json) wait on nothing but the
 * rows above the database's, and on a request of a database route being
 * answered before them on the same worker (--db-timeout at most).
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
