/*
 * resp.c: see resp.h.
 */
#include "resp.h"

#include <assert.h>
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

/*
 * prepend: s[0..n) in front of *p, moving *p back.  The header block is
 * written backwards, from the body's first byte: each piece lands where
 * it belongs, with no formatting pass and no copy.
 */
static void
prepend(char **p, const char *s, size_t n)
{
    *p -= n;
    memcpy(*p, s, n);
}

static void
prepend_str(char **p, const char *s)
{
    prepend(p, s, strlen(s));
}

static void
prepend_uint(char **p, unsigned long v)
{
    do {
        *--*p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
}

void
resp_finish(struct response *r, const char **data, size_t *len)
{
    static const char oom[] = "Status: 500 Internal Server Error\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 14\r\n\r\n"
                              "out of memory\n";
    char *body, *p;
    size_t body_len;

    if (r->out.failed || r->out.len < RESP_HEADROOM) {
        *data = oom;
        *len = sizeof(oom) - 1;
        return;
    }
    body = p = r->out.data + RESP_HEADROOM;
    body_len = r->out.len - RESP_HEADROOM;
    prepend(&p, "\r\n", 2);
    if (r->allow != NULL) {
        prepend(&p, "\r\n", 2);
        prepend_str(&p, r->allow);
        prepend(&p, "Allow: ", 7);
    }
    prepend(&p, "\r\n", 2);
    prepend_uint(&p, body_len);
    prepend(&p, "Content-Length: ", 16);
    prepend(&p, "\r\n", 2);
    prepend_str(&p, r->type);
    prepend(&p, "Content-Type: ", 14);
    prepend(&p, "\r\n", 2);
    prepend_str(&p, resp_reason(r->status));
    prepend(&p, " ", 1);
    prepend_uint(&p, (unsigned long)r->status);
    prepend(&p, "Status: ", 8);
    /* Every header value is a short static string: it always fits. */
    assert(p >= r->out.data);
    *data = p;
    *len = (size_t)(body - p) + (r->head_only ? 0 : body_len);
}

void
resp_free(struct response *r)
{
    buf_free(&r->out);
}
