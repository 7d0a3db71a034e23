/* Unit tests of the JSON shapes: app/world.c and app/hello.c. */
#include "handler.h"
#include "harness.h"

static const char *
body(struct response *r)
{
    buf_putc(&r->out, '\0');
    r->out.len--;
    return r->out.data + RESP_HEADROOM;
}

int
main(void)
{
    struct world one = {3217, 2149}, two[2] = {{1, 10000}, {10000, 1}};
    struct ctx ctx = {.rng = 42};
    struct request req = {""};
    struct response r = {0};
    struct buf b = {0};
    int32_t ids[500];
    int i, distinct = 1, in_range = 1;
    unsigned char seen[WORLD_ROWS + 1] = {0};

    world_render(&b, &one, 1, 0);
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

    resp_begin(&r, 0);
    handle_json(&ctx, &req, &r);
    is_str(body(&r), "{\"message\":\"Hello, World!\"}", "/json body");
    is_str(r.type, "application/json", "/json content type");
    resp_begin(&r, 0);
    handle_plaintext(&ctx, &req, &r);
    is_str(body(&r), "Hello, World!", "/plaintext body: 13 bytes, no newline");
    is_str(r.type, "text/plain", "/plaintext content type");
    resp_free(&r);

    world_random_ids(&ctx, ids, 500);
    for (i = 0; i < 500; i++) {
        if (ids[i] < 1 || ids[i] > WORLD_ROWS) {
            in_range = 0;
            continue;
        }
        if (seen[ids[i]]++)
            distinct = 0;
    }
    ok(in_range, "random ids within 1..10000");
    ok(distinct, "500 random ids are distinct");
    for (i = 0, in_range = 1; i < 100000; i++) {
        int32_t v = handler_random(&ctx, WORLD_ROWS);
        if (v < 1 || v > WORLD_ROWS)
            in_range = 0;
    }
    ok(in_range, "handler_random stays within 1..10000");
    return done_testing();
}
