/*
 * resp.c: see resp.h.
 */
#include "resp.h"

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
    r->extra = NULL;
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
    case 413:
        return "Content Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/*
 * The header block is written backwards, from the body's first byte: each
 * piece lands where it belongs, with no formatting pass and no copy.  A
 * piece that would not fit the headroom is not written; the response then
 * turns into a 500.
 */
struct front {
    char *p;          /* the first byte written so far */
    const char *base; /* the headroom's start */
    int full;
};

static void
prepend(struct front *f, const char *s, size_t n)
{
    if (f->full || (size_t)(f->p - f->base) < n) {
        f->full = 1;
        return;
    }
    f->p -= n;
    memcpy(f->p, s, n);
}

static void
prepend_str(struct front *f, const char *s)
{
    prepend(f, s, strlen(s));
}

static void
prepend_uint(struct front *f, unsigned long v)
{
    char tmp[24], *q = tmp + sizeof(tmp);

    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    prepend(f, q, (size_t)(tmp + sizeof(tmp) - q));
}

void
resp_finish(struct response *r, const char **data, size_t *len)
{
    static const char oom[] = "Status: 500 Internal Server Error\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 14\r\n\r\n"
                              "out of memory\n";
    struct front f;
    char *body;
    size_t body_len;

    if (r->out.failed || r->out.len < RESP_HEADROOM) {
        *data = oom;
        *len = sizeof(oom) - 1;
        return;
    }
    body = r->out.data + RESP_HEADROOM;
    f.p = body;
    f.base = r->out.data;
    f.full = 0;
    body_len = r->out.len - RESP_HEADROOM;
    prepend(&f, "\r\n", 2);
    if (r->extra != NULL)
        prepend_str(&f, r->extra);
    if (r->allow != NULL) {
        prepend(&f, "\r\n", 2);
        prepend_str(&f, r->allow);
        prepend(&f, "Allow: ", 7);
    }
    prepend(&f, "\r\n", 2);
    prepend_uint(&f, body_len);
    prepend(&f, "Content-Length: ", 16);
    prepend(&f, "\r\n", 2);
    prepend_str(&f, r->type);
    prepend(&f, "Content-Type: ", 14);
    prepend(&f, "\r\n", 2);
    prepend_str(&f, resp_reason(r->status));
    prepend(&f, " ", 1);
    prepend_uint(&f, (unsigned long)r->status);
    prepend(&f, "Status: ", 8);
    if (f.full) {
        *data = oom;
        *len = sizeof(oom) - 1;
        return;
    }
    *data = f.p;
    *len = (size_t)(body - f.p) + (r->head_only ? 0 : body_len);
}

void
resp_free(struct response *r)
{
    buf_free(&r->out);
}
