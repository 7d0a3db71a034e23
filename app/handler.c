/*
 * handler.c: helpers the handlers share; see handler.h.
 */
#include "handler.h"

#include <json-c/json.h>

void
handler_db_fail(struct response *r, int rc)
{
    if (rc == DB_UNAVAILABLE)
        resp_error(r, 503, "database unavailable");
    else
        resp_error(r, 500, "database error");
}

int
handler_json_add(struct json_object *obj, const char *key,
                 struct json_object *val)
{
    if (val == NULL || json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

int32_t
handler_random(struct handler_ctx *ctx, int32_t max)
{
    uint64_t x = ctx->rng;

    /* xorshift64* (Vigna): fast, and plenty for picking rows. */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ctx->rng = x;
    return (int32_t)((x * 0x2545F4914F6CDD1DULL) >> 33) % max + 1;
}
