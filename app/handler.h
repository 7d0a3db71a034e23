/*
 * handler.h: what the route table hands a handler, and what the handlers
 * share.  Each route group declares its handlers in its own header
 * (hello.h, world.h, fortune.h).
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

/*
 * The worker's state that handlers share, one per process.  db serves the
 * reads (/db, /queries, /fortunes, the cache's fill); db_write, when there
 * is one, /updates, its reads included, so that a request reads and
 * writes its rows on the same server.  NULL: db serves every route.
 */
struct handler_ctx {
    struct db *db;
    struct db *db_write;
    struct cache *cache;
    uint64_t rng; /* xorshift64* state, never 0 */
};

struct request {
    const char *query; /* the query string without '?'; never NULL */
    int head;          /* HEAD: answer as GET would, change nothing */
};

typedef void handler_fn(struct handler_ctx *ctx, const struct request *req,
                        struct response *r);

/* handler_db_fail: the response for a db.h error code. */
void handler_db_fail(struct response *r, int rc);

struct json_object;

/*
 * handler_json_add: obj[key] = val, val owned by obj from then on; a val
 * that is NULL (its making ran out of memory) or that cannot be added is
 * put, not leaked.  Results: 0, or -1.
 */
int handler_json_add(struct json_object *obj, const char *key,
                     struct json_object *val);

/* handler_random: a uniform-enough integer in [1, max]. */
int32_t handler_random(struct handler_ctx *ctx, int32_t max);

#endif
