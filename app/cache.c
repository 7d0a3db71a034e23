/*
 * cache.c: see cache.h.
 */
#include "cache.h"

#include <stdlib.h>
#include <time.h>

struct cache {
    unsigned ttl_s;
    int filled;
    time_t filled_at;
    /* Rows by id; present[id] says whether rows[id] holds a row. */
    struct world rows[WORLD_ROWS + 1];
    unsigned char present[WORLD_ROWS + 1];
    struct world scratch[WORLD_ROWS];
};

struct cache *
cache_new(unsigned ttl_s)
{
    struct cache *c = calloc(1, sizeof(*c));

    if (c != NULL)
        c->ttl_s = ttl_s;
    return c;
}

void
cache_free(struct cache *c)
{
    free(c);
}

static int
cache_fill(struct cache *c, struct db *db)
{
    int i, n, rc;

    if ((rc = db_world_all(db, c->scratch, WORLD_ROWS, &n)) != DB_OK)
        return rc;
    for (i = 0; i <= WORLD_ROWS; i++)
        c->present[i] = 0;
    for (i = 0; i < n; i++) {
        int32_t id = c->scratch[i].id;

        if (id >= 1 && id <= WORLD_ROWS) {
            c->rows[id] = c->scratch[i];
            c->present[id] = 1;
        }
    }
    c->filled = 1;
    c->filled_at = time(NULL);
    return DB_OK;
}

int
cache_get(struct cache *c, struct db *db, int32_t id, struct world *out)
{
    int rc;

    if (!c->filled ||
        (c->ttl_s != 0 && time(NULL) - c->filled_at >= (time_t)c->ttl_s)) {
        if ((rc = cache_fill(c, db)) != DB_OK)
            return rc;
    }
    if (id >= 1 && id <= WORLD_ROWS && c->present[id]) {
        *out = c->rows[id];
        return DB_OK;
    }
    if ((rc = db_world_read(db, &id, 1, out)) != DB_OK)
        return rc;
    if (id >= 1 && id <= WORLD_ROWS) {
        c->rows[id] = *out;
        c->present[id] = 1;
    }
    return DB_OK;
}
