/*
 * test_world.c: the World routes' JSON and ids (app/world.c).  The routes
 * against a real database are in the integration tests.
 */
#include "../../app/world.c"

#include "harness.h"

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

int
main(void)
{
    test_render();
    test_random_ids();
    return done_testing();
}
