/*
 * cache.h: the worker's in-process cache of World rows, for
 * /cached-queries.
 *
 * Policy: the cache is filled with the whole table (10,000 rows, 80 KB) by
 * one SELECT on its first use, not at start, so that a worker which never
 * serves /cached-queries never reads the table and other routes' statement
 * counts stay exact.  Entries then live for ttl seconds (0: the worker's
 * life, the default); an expired cache is filled again on its next use.
 * An id the table did not hold when it was loaded is a miss: it is read
 * from the database and kept.  Rows changed by /updates are seen after the
 * next fill; TechEmpower allows that staleness for this test.
 */
#ifndef CACHE_H
#define CACHE_H

#include "db.h"

struct cache;

/* cache_new: an empty cache whose fills expire after ttl_s (0: never). */
struct cache *cache_new(unsigned ttl_s);

void cache_free(struct cache *c);

/*
 * cache_get: the World row of id, filling the cache from db if it is empty
 * or expired.  Results: DB_OK with *out set, or a db.h error code.
 */
int cache_get(struct cache *c, struct db *db, int32_t id, struct world *out);

#endif
