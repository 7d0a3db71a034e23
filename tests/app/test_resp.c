/* test_resp.c: the CGI framing of a response (app/resp.c). */
#include "../../app/resp.c"

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

int
main(void)
{
    struct response r = {0};
    size_t len;

    resp_begin(&r, 0);
    resp_set(&r, 200, RESP_CT_JSON);
    buf_puts(resp_body(&r), "{}");
    is_str(finish(&r, &len),
           "Status: 200 OK\r\nContent-Type: application/json\r\n"
           "Content-Length: 2\r\n\r\n{}",
           "200 framing: headers, then the body, in one piece");
    resp_begin(&r, 1);
    resp_set(&r, 200, RESP_CT_HTML);
    buf_puts(resp_body(&r), "<p>");
    is_str(finish(&r, &len),
           "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
           "Content-Length: 3\r\n\r\n",
           "HEAD: the body's length, no body");
    resp_begin(&r, 0);
    resp_error(&r, 503, "database unavailable");
    is_str(finish(&r, &len),
           "Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
           "Content-Length: 21\r\n\r\ndatabase unavailable\n",
           "503 framing");
    resp_begin(&r, 0);
    r.out.failed = 1;
    ok(strncmp(finish(&r, &len), "Status: 500", 11) == 0,
       "a response that ran out of memory becomes a 500");
    resp_begin(&r, 0);
    resp_error(&r, 405, "Method Not Allowed");
    r.allow = "GET, HEAD";
    is_str(finish(&r, &len),
           "Status: 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
           "Content-Length: 19\r\nAllow: GET, HEAD\r\n\r\n"
           "Method Not Allowed\n",
           "405 framing: the Allow header");
    resp_begin(&r, 0);
    resp_error(&r, 404, "Not Found");
    is_str(finish(&r, &len),
           "Status: 404 Not Found\r\nContent-Type: text/plain\r\n"
           "Content-Length: 10\r\n\r\nNot Found\n",
           "404 framing: a short text body");
    is_str(resp_reason(418), "Unknown", "an unknown status has a reason");
    resp_free(&r);
    return done_testing();
}
