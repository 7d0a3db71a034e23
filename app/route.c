/*
 * route.c: see route.h.
 */
#include "route.h"

#include <string.h>

#include "fortune.h"
#include "hello.h"
#include "world.h"

#define ROUTE(p, fn)                                                           \
    {                                                                          \
        p, sizeof(p) - 1, fn                                                   \
    }

static const struct route {
    const char *path;
    size_t len;
    handler_fn *fn;
} routes[] = {
    ROUTE("/plaintext", handle_plaintext),
    ROUTE("/json", handle_json),
    ROUTE("/db", handle_db),
    ROUTE("/queries", handle_queries),
    ROUTE("/fortunes", handle_fortunes),
    ROUTE("/updates", handle_updates),
    ROUTE("/cached-queries", handle_cached_queries),
};

handler_fn *
route_find(const char *path, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (routes[i].len == len && memcmp(routes[i].path, path, len) == 0)
            return routes[i].fn;
    return NULL;
}

void
route_handle(struct handler_ctx *ctx, const char *method, const char *path,
             size_t len, const char *query, struct response *r)
{
    int head = method != NULL && strcmp(method, "HEAD") == 0;
    struct request req = {query ? query : "", head};
    handler_fn *fn;

    resp_begin(r, head);
    if ((fn = route_find(path, len)) == NULL) {
        resp_error(r, 404, "Not Found");
        return;
    }
    if (!head && (method == NULL || strcmp(method, "GET") != 0)) {
        resp_error(r, 405, "Method Not Allowed");
        r->allow = "GET, HEAD";
        return;
    }
    fn(ctx, &req, r);
}
