/*
 * db.h: the worker's PostgreSQL connection.
 *
 * One struct db per worker process, opened after fork and never shared.
 * Every statement the routes run is prepared once per connection, when it
 * is made.  The connection is configured the libpq way: the PG*
 * environment variables, overridden by an optional conninfo string.
 *
 * When the connection breaks (PostgreSQL restarted, network cut) the call
 * in progress returns DB_UNAVAILABLE, the connection is closed at once
 * (never left orphaned), and the next calls reconnect, spaced by a backoff
 * that doubles up to DB_BACKOFF_MAX_MS; in between they return
 * DB_UNAVAILABLE without touching the network, so an outage costs each
 * request microseconds.
 *
 * A conninfo may list several hosts ("host=a,b,c"): libpq tries them in
 * turn at every connection, the first at start and each reconnection
 * alike, and keeps the first that answers and is of the kind
 * target_session_attrs asks for (db_set_target).  A worker whose server
 * died thus reconnects to one that lives.  libpq's walk ends early at a
 * server that closes the connection during its handshake (one shutting
 * down): the first failure after a working connection walks the list
 * twice.
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

#define DB_BACKOFF_MIN_MS 50
#define DB_BACKOFF_MAX_MS 2000

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

/* db_free: close the connection, if any, and free the handle. */
void db_free(struct db *db);

/*
 * db_connect: connect now if not connected and the backoff allows.
 * Called at worker start, so the first request finds the connection warm.
 */
int db_connect(struct db *db);

/*
 * db_retry_in: for a persistent handle whose connection failed or was
 * lost, milliseconds until db_connect may try again (0: now), so that an
 * idle worker reconnects by itself; -1 when it holds its connection, keeps
 * none (DB_PER_REQUEST), has not needed one yet, or db is NULL.
 */
int64_t db_retry_in(const struct db *db);

/*
 * db_request_done: the request is answered; in DB_PER_REQUEST mode the
 * connection is closed here.
 */
void db_request_done(struct db *db);

/*
 * db_world_read: out[i] = the World row of ids[i], one SELECT per row,
 * sent as one pipeline when n > 1.  A statement cancelled (statement_timeout)
 * ends the read at once, DB_UNAVAILABLE, and the connection goes with the
 * statements left behind it: a request waits one statement_timeout at
 * most, not one per row.
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
