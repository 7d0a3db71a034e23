/*
 * fortune.c: /fortunes, an HTML page of every fortune plus one added at
 * request time, sorted by message.
 */
#include <stdlib.h>
#include <string.h>

#include "fortune.h"
#include "html.h"

#define EXTRA_FORTUNE "Additional fortune added at request time."

static int
fortune_cmp(const void *a, const void *b)
{
    const struct fortune *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->message, y->message, n);

    /* memcmp, not strcoll: byte order of UTF-8 is code point order. */
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* fortune_sort: by message, in byte order (UTF-8 code point order). */
static void
fortune_sort(struct fortune *f, int n)
{
    qsort(f, (size_t)n, sizeof(*f), fortune_cmp);
}

/* fortune_render: the HTML page of f[0..n), escaped, in that order. */
static void
fortune_render(struct buf *b, const struct fortune *f, int n)
{
    int i;

    buf_puts(b, "<!DOCTYPE html><html><head><title>Fortunes</title></head>"
                "<body><table><tr><th>id</th><th>message</th></tr>");
    for (i = 0; i < n; i++) {
        buf_puts(b, "<tr><td>");
        buf_put_int(b, f[i].id);
        buf_puts(b, "</td><td>");
        html_escape(b, f[i].message, f[i].len);
        buf_puts(b, "</td></tr>");
    }
    buf_puts(b, "</table></body></html>");
}

void
handle_fortunes(struct handler_ctx *ctx, const struct request *req,
                struct response *r)
{
    struct fortune *f;
    int n, rc;

    (void)req;
    if ((rc = db_fortunes(ctx->db, &f, &n)) != DB_OK) {
        handler_db_fail(r, rc);
        return;
    }
    /* db_fortunes leaves room for this one. */
    f[n].id = 0;
    f[n].message = EXTRA_FORTUNE;
    f[n].len = sizeof(EXTRA_FORTUNE) - 1;
    fortune_sort(f, n + 1);
    resp_set(r, 200, RESP_CT_HTML);
    fortune_render(resp_body(r), f, n + 1);
}
