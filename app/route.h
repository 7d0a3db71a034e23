/*
 * route.h: the route table, on top of the handlers.
 */
#ifndef ROUTE_H
#define ROUTE_H

#include <stddef.h>

#include "handler.h"

/* route_find: the handler of path[0..len) (exact match), or NULL. */
handler_fn *route_find(const char *path, size_t len);

/*
 * route_handle: answer one request into r.  method may be NULL (treated as
 * unknown); query may be NULL.  An unknown path is a 404, a method other
 * than GET or HEAD a 405 with Allow; HEAD gets GET's headers and no body.
 */
void route_handle(struct handler_ctx *ctx, const char *method, const char *path,
                  size_t len, const char *query, struct response *r);

#endif
