/* test_resp.c: the CGI framing of a response (app/resp.c). */
#include "../../app/resp.c"

#include "harness.h"

/*
 * The responses framed, a row each: HEAD or not; a status with its type
 * and body, or (type NULL) resp_error's status and message; an Allow
 * header; a buffer that ran out of memory.
 */
static const struct {
    int head, status;
    const char *type, *body, *allow;
    int failed;
    const char *want, *name;
} rows[] = {
    {0, 200, RESP_CT_JSON, "{}", NULL, 0,
     "Status: 200 OK\r\nContent-Type: application/json\r\n"
     "Content-Length: 2\r\n\r\n{}",
     "200 framing: headers, then the body, in one piece"},
    {1, 200, RESP_CT_HTML, "<p>", NULL, 0,
     "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
     "Content-Length: 3\r\n\r\n",
     "HEAD: the body's length, no body"},
    {0, 503, NULL, "database unavailable", NULL, 0,
     "Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
     "Content-Length: 21\r\n\r\ndatabase unavailable\n",
     "503 framing"},
    {0, 200, RESP_CT_JSON, "{}", NULL, 1,
     "Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
     "Content-Length: 14\r\n\r\nout of memory\n",
     "a response that ran out of memory becomes a 500"},
    {0, 405, NULL, "Method Not Allowed", "GET, HEAD", 0,
     "Status: 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
     "Content-Length: 19\r\nAllow: GET, HEAD\r\n\r\nMethod Not Allowed\n",
     "405 framing: the Allow header"},
    {0, 404, NULL, "Not Found", NULL, 0,
     "Status: 404 Not Found\r\nContent-Type: text/plain\r\n"
     "Content-Length: 10\r\n\r\nNot Found\n",
     "404 framing: a short text body"},
};

int
main(void)
{
    struct response r = {0};
    char out[8192];
    const char *data;
    size_t len, i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        resp_begin(&r, rows[i].head);
        if (rows[i].type != NULL) {
            resp_set(&r, rows[i].status, rows[i].type);
            buf_puts(resp_body(&r), rows[i].body);
        } else {
            resp_error(&r, rows[i].status, rows[i].body);
        }
        r.allow = rows[i].allow;
        r.out.failed = rows[i].failed;
        resp_finish(&r, &data, &len);
        snprintf(out, sizeof(out), "%.*s", (int)len, data);
        is_str(out, rows[i].want, rows[i].name);
    }
    is_str(resp_reason(418), "Unknown", "an unknown status has a reason");
    resp_free(&r);
    return done_testing();
}
