/*
 * test_world.c: the World routes' JSON and ids (app/world.c), and which
 * database handle each route uses, against a throwaway PostgreSQL
 * (tests/pg.h).  The routes' answers against a real database are in the
 * integration tests.
 */
#include "../../app/world.c"

#include <libpq-fe.h>
#include <stdlib.h>

#include "harness.h"
#include "pg.h"

static void
test_render(void)
{
    struct world one = {3217, 2149}, two[2] = {{1, 10000}, {10000, 1}};
    struct buf b = {0};

    is_int(world_render(&b, &one, 1, 0), 0, "render one");
    buf_putc(&b, '\0');
    is_str(b.data, "{\"id\":3217,\"randomNumber\":2149}", "/db: one object");
    buf_reset(&b);
    world_render(&b, two, 2, 1);
    buf_putc(&b, '\0');
    is_str(
        b.data,
        "[{\"id\":1,\"randomNumber\":10000},{\"id\":10000,\"randomNumber\":1}]",
        "/queries: an array of objects");
    buf_reset(&b);
    world_render(&b, two, 1, 1);
    buf_putc(&b, '\0');
    is_str(b.data, "[{\"id\":1,\"randomNumber\":10000}]",
           "an array of one is still an array");
    buf_free(&b);
}

static void
test_random_ids(void)
{
    struct handler_ctx ctx = {.rng = 42};
    static unsigned char seen[WORLD_ROWS + 1];
    int32_t ids[PARAM_COUNT_MAX];
    int i, distinct = 1, in_range = 1;

    world_random_ids(&ctx, ids, PARAM_COUNT_MAX);
    for (i = 0; i < PARAM_COUNT_MAX; i++) {
        if (ids[i] < 1 || ids[i] > WORLD_ROWS) {
            in_range = 0;
            continue;
        }
        if (seen[ids[i]]++)
            distinct = 0;
    }
    ok(in_range, "random ids within 1..10000");
    ok(distinct, "500 random ids are distinct");
}

/*
 * last_query: the last statement of the backend named app, from
 * pg_stat_activity; "" when there is no such backend.
 */
static const char *
last_query(const char *app)
{
    return q_text(peer,
                  "SELECT query FROM pg_stat_activity "
                  "WHERE application_name = $1",
                  app);
}

/* route: one request of handler h; its status. */
static int
route(handler_fn *h, struct handler_ctx *ctx, const char *query)
{
    struct request req = {query, 0};
    struct response r = {0};
    int status;

    resp_begin(&r, 0);
    h(ctx, &req, &r);
    status = r.status;
    resp_free(&r);
    return status;
}

/*
 * test_split: with a handle for writes (tfb-fcgi --db-read), /updates
 * reads and writes there, and it is opened by the first /updates only;
 * every other route stays on the reads' handle.
 */
static void
test_split(void)
{
    struct handler_ctx ctx = {.rng = 7};

    ctx.db = db_new("application_name=tfb-test-read", DB_PERSISTENT);
    ctx.db_write = db_new("application_name=tfb-test-write", DB_PERSISTENT);
    ctx.cache = cache_new(0);
    if (ctx.db == NULL || ctx.db_write == NULL || ctx.cache == NULL) {
        ok(0, "two handles and a cache");
        return;
    }
    is_int(route(handle_db, &ctx, ""), 200, "/db");
    is_int(route(handle_queries, &ctx, "queries=3"), 200, "/queries");
    is_int(route(handle_cached_queries, &ctx, "count=3"), 200,
           "/cached-queries (the cache filled)");
    is_str(last_query("tfb-test-read"), "SELECT id, randomnumber FROM world",
           "the reads ran on the reads' handle (its last: the cache fill)");
    is_str(last_query("tfb-test-write"), "",
           "and the write handle has not connected");
    is_int(route(handle_updates, &ctx, "queries=3"), 200, "/updates");
    ok(strncmp(last_query("tfb-test-write"), "UPDATE world", 12) == 0,
       "/updates wrote through the write handle");
    is_str(last_query("tfb-test-read"), "SELECT id, randomnumber FROM world",
           "the reads' handle ran nothing for it, not even its reads");
    db_free(ctx.db_write);
    ctx.db_write = NULL;
    is_int(route(handle_updates, &ctx, "queries=2"), 200,
           "without a write handle, /updates");
    ok(strncmp(last_query("tfb-test-read"), "UPDATE world", 12) == 0,
       "goes through the one handle");
    cache_free(ctx.cache);
    db_free(ctx.db);
}

int
main(void)
{
    test_render();
    test_random_ids();
    if (pg_peer() == -1) {
        ok(0, "a PostgreSQL cluster for the test, and a connection to it");
        return done_testing();
    }
    test_split();
    PQfinish(peer);
    return done_testing();
}
