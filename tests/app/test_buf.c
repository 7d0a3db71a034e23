/* test_buf.c: the growable buffer (app/buf.c). */
#include "../../app/buf.c"

#include <limits.h>

#include "harness.h"

int
main(void)
{
    struct buf b = {0};

    buf_put_int(&b, 0);
    buf_putc(&b, ' ');
    buf_put_int(&b, -42);
    buf_putc(&b, ' ');
    buf_put_int(&b, LONG_MIN);
    buf_putc(&b, ' ');
    buf_put_uint(&b, ULONG_MAX);
    buf_putc(&b, '\0');
    is_str(b.data, "0 -42 -9223372036854775808 18446744073709551615",
           "buf_put_int, buf_put_uint");
    buf_reset(&b);
    ok(b.len == 0 && !b.failed, "buf_reset empties");
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "0123456789");
    ok(b.len == 1000000 && !b.failed, "buf grows to 1 MB");
    is_int(buf_reserve(&b, SIZE_MAX), -1, "an impossible reserve fails");
    ok(b.failed, "and the buffer remembers it");
    buf_puts(&b, "x");
    is_int(b.len, 1000000, "appends after a failure are dropped");
    buf_reset(&b);
    ok(!b.failed && b.len == 0, "buf_reset clears the failure");
    buf_free(&b);
    ok(b.data == NULL && b.cap == 0, "buf_free leaves an empty buffer");
    return done_testing();
}
