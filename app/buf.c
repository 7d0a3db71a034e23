/*
 * buf.c: see buf.h.
 */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
buf_reserve(struct buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->failed)
        return -1;
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        goto fail;
    cap = b->cap ? b->cap : 1024;
    while (cap - b->len < n)
        cap *= 2;
    if ((p = realloc(b->data, cap)) == NULL)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;

fail:
    b->failed = 1;
    return -1;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0 || buf_reserve(b, n) == -1)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void
buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
    if (buf_reserve(b, 1) == -1)
        return;
    b->data[b->len++] = c;
}

void
buf_put_uint(struct buf *b, unsigned long v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void
buf_put_int(struct buf *b, long v)
{
    if (v < 0) {
        buf_putc(b, '-');
        /* Negate in unsigned arithmetic: -LONG_MIN overflows a long. */
        buf_put_uint(b, 0UL - (unsigned long)v);
    } else {
        buf_put_uint(b, (unsigned long)v);
    }
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    b->failed = 0;
}

void
buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
