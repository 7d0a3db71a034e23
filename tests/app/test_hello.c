/* test_hello.c: /plaintext and /json (app/hello.c). */
#include "../../app/hello.c"

#include "harness.h"

/* body: what the handler appended, as a string. */
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
    struct handler_ctx ctx = {.rng = 42};
    struct request req = {"", 0};
    struct response r = {0};

    resp_begin(&r, 0);
    handle_json(&ctx, &req, &r);
    is_int(r.status, 200, "/json: 200");
    is_str(body(&r), "{\"message\":\"Hello, World!\"}", "/json body");
    is_str(r.type, "application/json", "/json content type");
    resp_begin(&r, 0);
    handle_plaintext(&ctx, &req, &r);
    is_int(r.status, 200, "/plaintext: 200");
    is_str(body(&r), "Hello, World!", "/plaintext body: 13 bytes, no newline");
    is_str(r.type, "text/plain", "/plaintext content type");
    resp_free(&r);
    return done_testing();
}
