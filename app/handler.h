/*
 * handler.h: what the route table hands a handler, and the handlers.
 *
 * A handler reads the request, fills the response (resp.h) and returns; it
 * never writes to the server itself and never exits the process.  Its
 * failures become an HTTP status (503 when the database is unreachable,
 * 500 otherwise) and one log line, written by whoever saw them.
 */
#ifndef HANDLER_H
#define HANDLER_H

#include <stdint.h>

#include "buf.h"
#include "cache.h"
#include "db.h"
#include "resp.h"

/* The worker's state that handlers share, one per process. */
struct ctx {
    struct db *db;
    struct cache *cache;
    uint64_t rng; /* xorshift64* state, never 0 */
};

struct request {
    const char *query; /* the query string without '?'; never NULL */
};

typedef void handler_fn(struct ctx *ctx, const struct request *req,
                        struct response *r);

/* hello.c */
handler_fn handle_plaintext, handle_json;

/* world.c */
handler_fn handle_db, handle_queries, handle_updates, handle_cached_queries;

/* fortune.c */
handler_fn handle_fortunes;

/* handler.c: helpers the handlers share. */

/* handler_db_fail: the response for a db.h error code. */
void handler_db_fail(struct response *r, int rc);

/* handler_random: a uniform-enough integer in [1, max]. */
int32_t handler_random(struct ctx *ctx, int32_t max);

/* world.c: rows as the routes print them. */

/*
 * world_render: rows as JSON, {"id":1,"randomNumber":2} each; a bare
 * object when array is 0 (n must be 1), else an array.
 */
void world_render(struct buf *b, const struct world *rows, int n, int array);

/*
 * world_random_ids: n distinct ids in [1, WORLD_ROWS] (n <= WORLD_ROWS).
 */
void world_random_ids(struct ctx *ctx, int32_t *ids, int n);

/* fortune.c: the page, for the route and its tests. */

/* fortune_sort: by message, in byte order (UTF-8 code point order). */
void fortune_sort(struct fortune *f, int n);

/* fortune_render: the HTML page of f[0..n), escaped, in that order. */
void fortune_render(struct buf *b, const struct fortune *f, int n);

#endif
