/* test_route.c: the route table, 404, 405 and HEAD (app/route.c). */
#include "../../app/route.c"

#include "harness.h"

static const char *
finish(struct response *r, size_t *len)
{
    static char out[8192];
    const char *data;

    resp_finish(r, &data, len);
    snprintf(out, sizeof(out), "%.*s", (int)*len, data);
    return out;
}

#define FIND(p) route_find(p, strlen(p))

int
main(void)
{
    struct handler_ctx ctx = {.rng = 1};
    struct response r = {0};
    size_t len;

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

    route_handle(&ctx, "GET", "/plaintext", 10, NULL, &r);
    is_str(finish(&r, &len),
           "Status: 200 OK\r\nContent-Type: text/plain\r\n"
           "Content-Length: 13\r\n\r\nHello, World!",
           "GET /plaintext framing");
    route_handle(&ctx, "HEAD", "/plaintext", 10, NULL, &r);
    is_str(finish(&r, &len),
           "Status: 200 OK\r\nContent-Type: text/plain\r\n"
           "Content-Length: 13\r\n\r\n",
           "HEAD: GET's headers, no body");
    route_handle(&ctx, "GET", "/nope", 5, NULL, &r);
    is_str(finish(&r, &len),
           "Status: 404 Not Found\r\nContent-Type: text/plain\r\n"
           "Content-Length: 10\r\n\r\nNot Found\n",
           "unknown path: 404 with a short body");
    route_handle(&ctx, "POST", "/json", 5, NULL, &r);
    is_str(finish(&r, &len),
           "Status: 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
           "Content-Length: 19\r\nAllow: GET, HEAD\r\n\r\n"
           "Method Not Allowed\n",
           "POST: 405 with Allow");
    route_handle(&ctx, NULL, "/json", 5, NULL, &r);
    is_int(r.status, 405, "no method: 405");
    resp_free(&r);
    return done_testing();
}
