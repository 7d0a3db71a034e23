/*
 * hello.c: /plaintext and /json, the routes without a database.
 */
#include <json-c/json.h>

#include "hello.h"

#define HELLO "Hello, World!"

void
handle_plaintext(struct handler_ctx *ctx, const struct request *req,
                 struct response *r)
{
    (void)ctx;
    (void)req;
    resp_set(r, 200, RESP_CT_TEXT);
    buf_append(resp_body(r), HELLO, sizeof(HELLO) - 1);
}

void
handle_json(struct handler_ctx *ctx, const struct request *req,
            struct response *r)
{
    struct json_object *obj;
    const char *s;
    size_t len;

    (void)ctx;
    (void)req;
    /* Serialised per request, as the test requires. */
    obj = json_object_new_object();
    if (obj == NULL ||
        handler_json_add(obj, "message", json_object_new_string(HELLO)) ||
        (s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN,
                                               &len)) == NULL) {
        json_object_put(obj);
        resp_error(r, 500, "out of memory");
        return;
    }
    resp_set(r, 200, RESP_CT_JSON);
    buf_append(resp_body(r), s, len);
    json_object_put(obj);
}
