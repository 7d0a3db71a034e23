/*
 * test_cache.c: the World cache of /cached-queries (app/cache.c) against a
 * real server, a throwaway cluster started through deploy/stack
 * (tests/pg.h).  What the cache reads from the database is counted in
 * pg_stat_statements: the rows returned by the handle's two statements on
 * World, both "SELECT id, randomnumber FROM world...".  The test's own
 * queries are written otherwise, so that they are not counted with them.
 */
#include "../../app/cache.c"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "log.h"
#include "pg.h"

/* rows_read: World rows the handle's statements have returned so far. */
static long
rows_read(void)
{
    return q_long("SELECT coalesce(sum(rows), 0) FROM pg_stat_statements "
                  "WHERE query LIKE 'SELECT id, randomnumber FROM world%'",
                  NULL);
}

/* set_random: a new value for row id, unlike its current one. */
static long
set_random(int32_t id)
{
    long v = random_number(id) % WORLD_ROWS + 1;
    char sql[128];

    snprintf(sql, sizeof(sql),
             "UPDATE world SET randomnumber = %ld WHERE id = $1", v);
    q_long_int(sql, id);
    return v;
}

static void
test_fill_and_hits(struct db *db)
{
    struct cache *c = cache_new(0);
    struct world w;
    long before, old, changed;
    int32_t id;
    int i, same = 1, rc = DB_OK;

    before = rows_read();
    is_int(cache_get(c, db, 17, &w), DB_OK, "the first cache_get");
    ok(w.id == 17 && w.random_number == random_number(17), "gives the row");
    is_int(rows_read() - before, WORLD_ROWS,
           "and fills the cache with the whole table");

    before = rows_read();
    for (i = 0; i < 2000; i++) {
        id = (int32_t)(i * 7919 % WORLD_ROWS + 1);
        rc |= cache_get(c, db, id, &w);
        if (w.id != id || w.random_number != random_number(id))
            same = 0;
    }
    is_int(rc, DB_OK, "2000 hits");
    ok(same, "each the row of its id");
    is_int(rows_read() - before, 0, "read no row from the database");

    old = random_number(300);
    changed = set_random(300);
    cache_get(c, db, 300, &w);
    ok(w.random_number == old && w.random_number != changed,
       "a row changed in the database stays as it was: stale until a refill");
    cache_free(c);
}

static void
test_ttl(struct db *db)
{
    struct cache *forever = cache_new(0), *minute = cache_new(60),
                 *second = cache_new(1);
    struct world w;
    long before, changed;

    cache_get(forever, db, 1, &w);
    cache_get(minute, db, 1, &w);
    cache_get(second, db, 1, &w);
    changed = set_random(400);

    /* As if the fills were made a while ago (the ttl is in seconds of
     * time(NULL), which is what the cache reads). */
    forever->filled_at -= 3600;
    minute->filled_at -= 30;
    second->filled_at -= 1;

    before = rows_read();
    cache_get(forever, db, 400, &w);
    ok(w.random_number != changed && rows_read() == before,
       "ttl 0: never expires");
    cache_get(minute, db, 400, &w);
    ok(w.random_number != changed && rows_read() == before,
       "ttl 60 after 30 s: not expired");
    cache_get(second, db, 400, &w);
    is_int(rows_read() - before, WORLD_ROWS, "ttl 1 after 1 s: filled again");
    is_int(w.random_number, changed, "with the row as it is now");
    before = rows_read();
    cache_get(second, db, 400, &w);
    is_int(rows_read() - before, 0, "then hits again");
    cache_free(forever);
    cache_free(minute);
    cache_free(second);
}

static void
test_miss(struct db *db)
{
    struct cache *c = cache_new(0);
    struct world w;
    long before, v;
    int saved, null, beyond, zero;

    /* Row 500 missing while the cache is filled, back afterwards. */
    q_long_int("DELETE FROM world WHERE id = $1", 500);
    cache_get(c, db, 1, &w);
    q_long_int("INSERT INTO world (id, randomnumber) VALUES ($1, 4321)", 500);
    v = random_number(500);

    before = rows_read();
    is_int(cache_get(c, db, 500, &w), DB_OK, "a miss");
    ok(w.id == 500 && w.random_number == v, "is read from the database");
    is_int(rows_read() - before, 1, "one row");
    before = rows_read();
    cache_get(c, db, 500, &w);
    ok(w.random_number == v && rows_read() == before, "and kept");

    /* Their error lines are expected: not in the test's output. */
    before = rows_read();
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);
    beyond = cache_get(c, db, WORLD_ROWS + 1, &w);
    zero = cache_get(c, db, 0, &w);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(null);
    is_int(beyond, DB_ERROR, "an id beyond the table: DB_ERROR");
    is_int(zero, DB_ERROR, "id 0: DB_ERROR");
    is_int(rows_read() - before, 0, "neither found a row");
    cache_free(c);
}

static void
test_unavailable(struct db *db)
{
    char conninfo[PATH_MAX + 32];
    struct cache *c = cache_new(0);
    struct world w;
    struct db *down;

    /* A database that does not answer: its socket directory is empty. */
    snprintf(conninfo, sizeof(conninfo), "host=%s/tmp", pg_var);
    down = db_new(conninfo, DB_PERSISTENT);
    is_int(cache_get(c, down, 1, &w), DB_UNAVAILABLE,
           "a database that does not answer: DB_UNAVAILABLE");
    ok(!c->filled, "the cache stays empty");
    is_int(cache_get(c, db, 1, &w), DB_OK, "filled on the next use");
    db_free(down);
    cache_free(c);
}

int
main(void)
{
    struct db *db;

    /* The handle's warnings of test_unavailable are expected. */
    log_init("test_cache", LOG_ERR);
    if (pg_peer() == -1 || (db = db_new(NULL, DB_PERSISTENT)) == NULL) {
        ok(0, "a PostgreSQL cluster for the test, and connections to it");
        return done_testing();
    }
    test_fill_and_hits(db);
    test_ttl(db);
    test_miss(db);
    test_unavailable(db);
    db_free(db);
    PQfinish(peer);
    return done_testing();
}
