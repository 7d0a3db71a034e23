/* test_route.c: the route table, 404, 405 and HEAD (app/route.c). */
#include "../../app/route.c"

#include "harness.h"

#define FIND(p) route_find(p, strlen(p))

static void
test_table(void)
{
    ok(FIND("/plaintext") == handle_plaintext, "/plaintext");
    ok(FIND("/json") == handle_json, "/json");
    ok(FIND("/db") == handle_db, "/db");
    ok(FIND("/queries") == handle_queries, "/queries");
    ok(FIND("/fortunes") == handle_fortunes, "/fortunes");
    ok(FIND("/updates") == handle_updates, "/updates");
    ok(FIND("/cached-queries") == handle_cached_queries, "/cached-queries");
    ok(FIND("/") == NULL, "/ is not a route");
    ok(FIND("/json/") == NULL, "no trailing slash");
    ok(FIND("/JSON") == NULL, "paths are case-sensitive");
    ok(FIND("/jso") == NULL && FIND("/jsonx") == NULL, "no prefix match");
    ok(route_find("/dbx", 3) == handle_db, "length bounds the match");
}

/* What route_handle makes of one request; the framing is test_resp's. */
static const struct {
    const char *method, *path;
    int status;
    const char *type, *allow, *body;
    int head_only;
} cases[] = {
    {"GET", "/plaintext", 200, "text/plain", NULL, "Hello, World!", 0},
    {"HEAD", "/plaintext", 200, "text/plain", NULL, "Hello, World!", 1},
    {"GET", "/nope", 404, "text/plain", NULL, "Not Found\n", 0},
    {"HEAD", "/nope", 404, "text/plain", NULL, "Not Found\n", 1},
    {"POST", "/json", 405, "text/plain", "GET, HEAD", "Method Not Allowed\n",
     0},
    {"get", "/json", 405, "text/plain", "GET, HEAD", "Method Not Allowed\n", 0},
    {NULL, "/json", 405, "text/plain", "GET, HEAD", "Method Not Allowed\n", 0},
};

static void
test_handle(void)
{
    struct handler_ctx ctx = {.rng = 1};
    struct response r = {0};
    size_t i, len;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = strlen(cases[i].body);
        route_handle(&ctx, cases[i].method, cases[i].path,
                     strlen(cases[i].path), NULL, &r);
        ok(r.status == cases[i].status && strcmp(r.type, cases[i].type) == 0 &&
               (r.allow == cases[i].allow ||
                (r.allow && cases[i].allow &&
                 strcmp(r.allow, cases[i].allow) == 0)) &&
               r.head_only == cases[i].head_only &&
               r.out.len == RESP_HEADROOM + len &&
               memcmp(r.out.data + RESP_HEADROOM, cases[i].body, len) == 0,
           "%s %s: %d %s", cases[i].method ? cases[i].method : "(none)",
           cases[i].path, cases[i].status, cases[i].type);
    }
    resp_free(&r);
}

int
main(void)
{
    test_table();
    test_handle();
    return done_testing();
}
