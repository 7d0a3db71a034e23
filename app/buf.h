/*
 * buf.h: a growable byte buffer.
 *
 * Allocation failure is not reported at each append: the buffer remembers
 * it (buf->failed) and drops further appends, so a caller checks once, at
 * the end, the way stdio's ferror() is used.
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    int failed; /* an allocation failed; contents are incomplete */
};

/* buf_reserve: make room for n more bytes; 0, or -1 (and failed set). */
int buf_reserve(struct buf *b, size_t n);

void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);

/* buf_put_uint, buf_put_int: decimal digits of v. */
void buf_put_uint(struct buf *b, unsigned long v);
void buf_put_int(struct buf *b, long v);

/* buf_reset: empty the buffer, keep its memory and clear failed. */
void buf_reset(struct buf *b);

/* buf_free: release the memory; the buffer may be used again. */
void buf_free(struct buf *b);

#endif
