/* test_handler.c: what the handlers share (app/handler.c). */
#include "../../app/handler.c"

#include "harness.h"

static void
test_db_fail(void)
{
    struct response r = {0};

    resp_begin(&r, 0);
    handler_db_fail(&r, DB_UNAVAILABLE);
    is_int(r.status, 503, "database unavailable: 503");
    resp_begin(&r, 0);
    handler_db_fail(&r, DB_ERROR);
    is_int(r.status, 500, "database error: 500");
    resp_free(&r);
}

static void
test_random(void)
{
    struct handler_ctx a = {.rng = 42}, b = {.rng = 42};
    static unsigned hits[10];
    int i, in_range = 1, same = 1, even = 1;
    int32_t v;

    for (i = 0; i < 100000; i++) {
        v = handler_random(&a, WORLD_ROWS);
        if (v < 1 || v > WORLD_ROWS)
            in_range = 0;
        else
            hits[(v - 1) / 1000]++;
        if (handler_random(&b, WORLD_ROWS) != v)
            same = 0;
    }
    ok(in_range, "handler_random stays within 1..10000");
    ok(same, "the same seed draws the same numbers");
    /* 10,000 expected per tenth; 5 sigma is about 470. */
    for (i = 0; i < 10; i++)
        if (hits[i] < 9500 || hits[i] > 10500)
            even = 0;
    ok(even, "each tenth of the range gets its share");
    ok(a.rng != 0, "the state never reaches 0");
    is_int(handler_random(&a, 1), 1, "a range of one");
}

static void
test_json_add(void)
{
    struct json_object *obj = json_object_new_object(), *v;

    is_int(handler_json_add(obj, "a", json_object_new_int(7)), 0,
           "a value added");
    ok(json_object_object_get_ex(obj, "a", &v) && json_object_get_int(v) == 7,
       "  and found under its key");
    is_int(handler_json_add(obj, "b", NULL), -1,
           "a value whose making failed: -1, nothing added");
    ok(!json_object_object_get_ex(obj, "b", NULL),
       "  no key b (no null value)");
    json_object_put(obj);
}

int
main(void)
{
    test_db_fail();
    test_random();
    test_json_add();
    return done_testing();
}
