/*
 * db.h: the worker's PostgreSQL connection.
 *
 * One struct db per worker process, opened after fork and never shared.
 * Every statement the routes run is prepared once per connection, when it
 * is made.  The connection is configured the libpq way: the PG*
 * environment variables, overridden by an optional conninfo string.
 *
 * Nothing here waits without a deadline.  The socket is non-blocking from
 * the first byte: a connection is made with PQconnectStartParams and
 * PQconnectPoll, its statements prepared in one pipeline, and every
 * statement's answer awaited with poll() on its socket.  The table of
 * waits, the database's rows (issue 17; the worker's are in worker.h),
 * each with the test that holds it (tests/app/test_db.c unless named):
 *
 *   wait             bound                      when it passes
 *   ---------------- -------------------------- ---------------------------
 *   connect: a host  --db-connect-timeout (2 s) that host is given up and
 *   name's DNS       by default: each host's    the next one tried; after
 *   lookup, TCP,     attempt, from socket() to  the last, DB_UNAVAILABLE
 *   TLS, startup,    its statements prepared;   and the backoff.  A host
 *   authentication,  libpq's connect_timeout    that timed out is not tried
 *   target check,    (conninfo, PGCONNECT_      again in the same walk.
 *   preparation      TIMEOUT) when shorter
 *     test: "a server that never answers: given up at the bound", "hosts
 *     a,b, a stalled: b, after a's bound", "db_connect_start/step: given up
 *     at the bound"; DNS: none (the limit below)
 *   connect, made    never waits here: the      the same; meanwhile every
 *   step by step     caller waits on db_pollfd  call answers DB_UNAVAILABLE
 *   (db_connect_     at most db_connect_left    at once, never waiting for
 *   start/step: the  (the host's bound above)   the connection under way
 *   worker's loop)
 *     test: "db_connect does not wait for a connection under way";
 *     tests/app/test_worker.c "and a /db each time: 503 at once"
 *   send: a          the answer's deadline (the the connection is closed,
 *   statement, a     next row); tcp_user_       DB_UNAVAILABLE, the backoff
 *   pipeline         timeout 5 s in the kernel  starts (below)
 *     test: "the live connection holds tcp_user_timeout=5000"; a send that
 *     blocks in the kernel: none (it takes a peer's window shut)
 *   receive: each    --db-timeout (5 s by       the connection is closed
 *   result of a      default), never less than  (never PQcancel'd: that
 *   statement        the session's statement_   blocks, on a server that
 *                    timeout + 100 ms           does not answer), the call
 *                                               returns DB_UNAVAILABLE, the
 *                                               backoff starts
 *     test: "the server stopped: DB_UNAVAILABLE at its deadline" (/db's
 *     read, /queries' pipeline, /updates' write, /fortunes' read), "the
 *     answer's deadline: 600 + 100 ms"; tests/integration/
 *     test_deadlines.py "repro 4: /db answered 503 at the 1 s
 *     --db-timeout"; test_cluster.py "primary SIGSTOPped: /updates
 *     answered 200 or 503"
 *   the backoff      DB_BACKOFF_MIN_MS (50 ms)  the next attempt (the
 *                    doubling to DB_BACKOFF_    worker's loop makes it,
 *                    MAX_MS (2 s)               idle or not)
 *     test: "attempts spaced by a backoff that doubles", "a call within
 *     the backoff makes no attempt"; test_cluster.py "primary shut down
 *     (pg_ctl stop -m fast): recovered by itself within 2 s"
 *   an idle          keepalives: 10 s, then 3   the kernel ends the
 *   connection       probes 2 s apart (TCP)     connection; the next call
 *                                               learns it and reconnects
 *     test: "and keepalives_idle=10" (set on the live connection); their
 *     expiry: none (the kernel's timers, a dead peer's 16 s)
 *   close            never blocks (PQfinish on  its Terminate message is
 *                    a non-blocking socket)     dropped if it does not fit
 *     test: "the server stopped: DB_UNAVAILABLE at its deadline" (closed
 *     on a stopped server, within the deadline's slack)
 *
 * One limit is libpq's, not ours: it resolves a host name with a blocking
 * getaddrinfo() (it has no asynchronous resolver), bounded only by the
 * resolver's own timeout (resolv.conf).  Name the servers by address
 * (hostaddr, or an IP as host), or a unix socket, to take DNS off the path.
 * Keepalives and tcp_user_timeout apply to TCP only; libpq sets neither on
 * a unix socket, and they cannot tell a stopped server whose kernel still
 * answers (SIGSTOP, a stalled proxy): the answer's deadline does.
 *
 * The answer's deadline and statement_timeout.  PostgreSQL's statement_
 * timeout (however set: PGOPTIONS, the conninfo's options, the role, the
 * server) ends a slow statement on the server's side: the call gets an
 * error and the connection stays usable.  The client's deadline ends the
 * wait on a server or network that stopped answering, and costs the
 * connection.  So it must sit ABOVE statement_timeout: a slow statement is
 * then cancelled by the server first, and the client's deadline fires
 * only when nothing answers at all.  The handle reads the session's
 * statement_timeout when it connects (in the preparation's pipeline, no
 * round trip of its own) and raises the deadline to statement_timeout +
 * DB_TIMEOUT_MARGIN_MS when it is below; without --db-timeout, a session
 * with a statement_timeout waits just that long, one without waits
 * DB_TIMEOUT_MS.  (DB_PER_REQUEST prepares nothing and reads nothing
 * either: its deadline is --db-timeout's, or DB_TIMEOUT_MS.)  Under tfb-spawn
 * the worker (main.c) sets statement_timeout below both the pool's request
 * time limit and its answer deadline (--db-timeout, or DB_TIMEOUT_MS) by
 * DB_TIMEOUT_MARGIN_MS at least, so the order is statement_timeout < this
 * deadline <= the request time limit: a blocked statement answers 503
 * within seconds, and before the supervisor would kill the worker.  The
 * deadline runs from the start of each wait for a result: a statement, or each
 * statement of a pipeline, answers within it or the server is deemed gone.
 *
 * When the connection breaks (PostgreSQL restarted, network cut) the call
 * in progress returns DB_UNAVAILABLE, the connection is closed at once
 * (never left orphaned), and it is made again: by the worker's event loop
 * step by step (db_connect_start, db_connect_step), which never waits on
 * it, or by the next call that finds none under way; a read whose
 * connection had died while idle is tried once more on the new one.  When
 * a connection attempt fails, or an answer does not come in time, the
 * next attempts are spaced by a backoff that doubles from DB_BACKOFF_MIN_MS
 * up to DB_BACKOFF_MAX_MS; in between, calls return DB_UNAVAILABLE without
 * touching the network, so one request per outage pays the deadline and
 * the others answer in microseconds.
 *
 * DB_UNAVAILABLE is answered 503, not 504.  504 is what nginx itself says
 * when the application does not answer in time (fastcgi_read_timeout): an
 * application's 504 would look like its own hang in nginx's logs.  The
 * database's stall is the application's resource being unavailable, and
 * the requests during the backoff that follows answer 503 at once: one
 * status for one outage, the one clients and load balancers read as "try
 * again later".  Neither is counted as a host failure by the shipped nginx
 * configurations (fastcgi_next_upstream error timeout).
 *
 * A conninfo may list several hosts ("host=a,b,c"): the handle walks them
 * itself, one libpq connection per host in turn, so that each host gets
 * its own deadline (libpq applies connect_timeout per host only in its
 * blocking connect, which is not used), at the first connection and every
 * reconnection alike.  It keeps the first that answers and is of the kind
 * target_session_attrs asks for (db_set_target); for prefer-standby it
 * walks twice as libpq does, standbys first, then any server that
 * answered.  A worker whose server died thus reconnects to one that lives,
 * past a host that refuses, closes the connection during its handshake
 * (one shutting down) or stalls.  A list the handle cannot split the way
 * libpq would (an empty entry, a service file) is left whole to libpq,
 * under one deadline.
 *
 * Every function returns DB_OK, DB_UNAVAILABLE (answer 503) or DB_ERROR
 * (the statement failed for another reason: answer 500), and logs one
 * line for each failure.
 */
#ifndef DB_H
#define DB_H

#include <stddef.h>
#include <stdint.h>

#define DB_OK 0
#define DB_UNAVAILABLE (-1)
#define DB_ERROR (-2)
#define DB_PENDING 1 /* db_connect_start/step: the connection is being made */

#define DB_BACKOFF_MIN_MS 50
#define DB_BACKOFF_MAX_MS 2000

/* Defaults of db_set_timeouts(): each host's connection, and an answer's
 * when the session has no statement_timeout; the answer's margin over
 * statement_timeout. */
#define DB_CONNECT_TIMEOUT_MS 2000
#define DB_TIMEOUT_MS 5000
#define DB_TIMEOUT_MARGIN_MS 100

/* The World table holds ids 1..WORLD_ROWS. */
#define WORLD_ROWS 10000

enum db_mode {
    DB_PERSISTENT, /* one connection for the worker's life (the default) */
    DB_PER_REQUEST /* experiment: connect and close around every request */
};

struct world {
    int32_t id;
    int32_t random_number;
};

struct fortune {
    int32_t id;
    const char *message; /* not NUL-terminated */
    size_t len;
};

struct db;

/*
 * db_new: a handle for conninfo (NULL: the PG* environment alone).
 * Results: the handle, not yet connected, or NULL when conninfo does not
 * parse (the reason is logged) or memory ran out.
 */
struct db *db_new(const char *conninfo, enum db_mode mode);

/*
 * db_set_target: the kind of server this handle wants when its conninfo
 * lists several: libpq's target_session_attrs ("read-write" for writes,
 * "prefer-standby" for reads that a standby may serve).  It applies
 * unless the conninfo or PGTARGETSESSIONATTRS names one, and from the
 * next connection on.  attrs is not copied (a string constant); NULL
 * leaves the choice to libpq (any server).
 */
void db_set_target(struct db *db, const char *attrs);

/*
 * db_set_statement_timeout: PostgreSQL's statement_timeout, in ms, for this
 * handle's connections from the next one on (0: the server's own).  It
 * goes in libpq's "options", after those of PGOPTIONS, which stay; an
 * "options" in the conninfo string replaces both.
 * Results: 0, or -1 when memory ran out.
 */
int db_set_statement_timeout(struct db *db, long ms);

/*
 * db_set_timeouts: each host's connection bound (connect_ms) and an
 * answer's (answer_ms, raised to the session's statement_timeout +
 * DB_TIMEOUT_MARGIN_MS when below it), in milliseconds; 0 or less: the
 * defaults (DB_CONNECT_TIMEOUT_MS; statement_timeout + the margin, or
 * DB_TIMEOUT_MS without one).  From the next connection or wait on.
 */
void db_set_timeouts(struct db *db, long connect_ms, long answer_ms);

/* db_free: close the connection, if any, end a connection under way, and
 * free the handle. */
void db_free(struct db *db);

/*
 * db_connect: connect now if not connected and the backoff allows, and
 * wait for it (poll(), each host within its connect bound).  Called at
 * worker start, so that the first request finds the connection warm, and
 * by the calls below when they find none.  A connection already under way
 * (db_connect_start) is not waited for: DB_UNAVAILABLE at once, so that a
 * request never waits for a connection the worker's loop is making.
 * Results: DB_OK, or DB_UNAVAILABLE (logged, and the backoff starts).
 */
int db_connect(struct db *db);

/*
 * The same connection made step by step, for an event loop that must not
 * wait on the database (the worker, idle, reconnecting):
 *
 * db_connect_start: start connecting unless connected (DB_OK), already
 * connecting (DB_PENDING) or within the backoff (DB_UNAVAILABLE, no
 * network).  Goes as far as it can without waiting.
 *
 * db_connect_step: go on, as far as possible without waiting; call it when
 * db_pollfd's descriptor is ready, or when db_connect_left reaches 0 (it
 * checks readiness itself, so any call is safe).  A host whose bound
 * passed is given up for the next one.
 *
 * Both return DB_OK (connected, statements prepared), DB_PENDING (wait on
 * db_pollfd, at most db_connect_left ms) or DB_UNAVAILABLE (every host
 * failed: logged, and the backoff starts).
 *
 * db_pollfd: while connecting, the socket to wait on and the poll(2) events
 * (POLLIN, POLLOUT) in *events; -1 otherwise.  It changes from host to
 * host, and may change at any step (libpq opens a new socket for each
 * address it tries): read it again after every step.
 *
 * db_connect_left: while connecting, milliseconds until the current
 * host's bound (0: passed, step now); -1 otherwise (or db NULL).
 */
int db_connect_start(struct db *db);
int db_connect_step(struct db *db);
int db_pollfd(const struct db *db, short *events);
int64_t db_connect_left(const struct db *db);

/*
 * db_retry_in: for a persistent handle whose connection failed or was
 * lost, milliseconds until db_connect (or db_connect_start) may try again
 * (0: now), so that an idle worker reconnects by itself; -1 when it holds
 * its connection, is making one (see db_connect_left), keeps none
 * (DB_PER_REQUEST), has not needed one yet, or db is NULL.  Within the
 * backoff every call below returns DB_UNAVAILABLE at once.
 */
int64_t db_retry_in(const struct db *db);

/*
 * The connection between requests.  A server that ends the session while
 * the worker is idle (a restart, pg_terminate_backend, an idle session
 * timeout) says so on the socket; watched, the worker learns it at once
 * instead of at its next request, shows the database down, and connects
 * again before a request needs it.
 *
 * db_idle_fd: the socket of the connection db holds (DB_PERSISTENT), to
 * watch for input while no statement runs; -1 without one.
 *
 * db_epoch: changes whenever that connection is closed or replaced.  A
 * watcher that finds another epoch knows the socket it watched is closed
 * (which took it out of any epoll set) and that its number names nothing
 * of ours any more.
 *
 * db_idle_check: the socket had input while idle: it is read (a notice,
 * a notification); a connection that ended is closed here, logged with
 * the server's reason, shown down, and a new one is due at once
 * (db_retry_in 0).  A request that needs the database while that first
 * attempt is under way waits for it in db_connect (at most each host's
 * bound), and when that attempt failed (the server restarting), the next
 * request makes one itself, backoff or not: as it would have had the end
 * not been seen, so that a restart or a switchover costs no request.
 * Past that one, during an outage, requests never wait.  The caller that
 * watches the attempt's socket must then expect it closed under it.
 * Results: DB_OK (still connected) or DB_UNAVAILABLE.
 */
int db_idle_fd(const struct db *db);
unsigned db_epoch(const struct db *db);
int db_idle_check(struct db *db);

/*
 * db_request_done: the request is answered; in DB_PER_REQUEST mode the
 * connection is closed here.
 */
void db_request_done(struct db *db);

/*
 * db_world_read: out[i] = the World row of ids[i], one SELECT per row,
 * sent as one pipeline when n > 1.  A statement cancelled (statement_timeout)
 * ends the read at once, DB_UNAVAILABLE; in a pipeline the connection goes
 * with the statements left behind it: a request waits one statement_timeout
 * at most, not one per row.  Alone, it keeps its connection.
 */
int db_world_read(struct db *db, const int32_t *ids, int n, struct world *out);

/*
 * db_world_update: write rows[i].random_number for each rows[i].id, in one
 * statement, committed when this returns DB_OK.  rows is sorted by id
 * in place, so that concurrent updates lock rows in the same order.
 */
int db_world_update(struct db *db, struct world *rows, int n);

/*
 * db_world_all: every World row, for the cache.  out has room for cap
 * rows; *n is set to the number read.
 */
int db_world_all(struct db *db, struct world *out, int cap, int *n);

/*
 * db_fortunes: every Fortune row, unsorted.  The array and the messages
 * belong to db and stay valid until the next db_fortunes() or db_free();
 * the array has room for one more entry, which the caller may fill.
 */
int db_fortunes(struct db *db, struct fortune **out, int *n);

#endif
