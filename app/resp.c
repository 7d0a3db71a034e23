/*
 * resp.c: see resp.h.
 */
#include "resp.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void
resp_begin(struct response *r, int head_only)
{
    buf_reset(&r->out);
    /* The headroom is reserved, not written: resp_finish fills it. */
    if (buf_reserve(&r->out, RESP_HEADROOM + 4096) == 0)
        r->out.len = RESP_HEADROOM;
    r->status = 200;
    r->type = RESP_CT_TEXT;
    r->allow = NULL;
    r->head_only = head_only;
}

struct buf *
resp_body(struct response *r)
{
    return &r->out;
}

void
resp_set(struct response *r, int status, const char *type)
{
    r->status = status;
    r->type = type;
}

void
resp_error(struct response *r, int status, const char *msg)
{
    int head_only = r->head_only;

    resp_begin(r, head_only);
    resp_set(r, status, RESP_CT_TEXT);
    buf_puts(&r->out, msg);
    buf_putc(&r->out, '\n');
}

const char *
resp_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void
resp_finish(struct response *r, const char **data, size_t *len)
{
    static const char oom[] = "Status: 500 Internal Server Error\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 14\r\n\r\n"
                              "out of memory\n";
    char hdr[RESP_HEADROOM];
    size_t body_len;
    int n;

    if (r->out.failed || r->out.len < RESP_HEADROOM) {
        *data = oom;
        *len = sizeof(oom) - 1;
        return;
    }
    body_len = r->out.len - RESP_HEADROOM;
    n = snprintf(hdr, sizeof(hdr),
                 "Status: %d %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\n%s%s%s\r\n",
                 r->status, resp_reason(r->status), r->type, body_len,
                 r->allow ? "Allow: " : "", r->allow ? r->allow : "",
                 r->allow ? "\r\n" : "");
    /* Every header value is a short static string: it always fits. */
    assert(n > 0 && (size_t)n < sizeof(hdr));
    memcpy(r->out.data + RESP_HEADROOM - n, hdr, (size_t)n);
    *data = r->out.data + RESP_HEADROOM - n;
    *len = (size_t)n + (r->head_only ? 0 : body_len);
}

void
resp_free(struct response *r)
{
    buf_free(&r->out);
}
