/* Unit tests of app/html.c and app/buf.c. */
#include <limits.h>

#include "buf.h"
#include "harness.h"
#include "html.h"

static void
check_escape(const char *in, const char *want)
{
    struct buf b = {0};

    html_escape(&b, in, strlen(in));
    buf_putc(&b, '\0');
    is_str(b.data, want, in);
    buf_free(&b);
}

int
main(void)
{
    struct buf b = {0};

    check_escape("", "");
    check_escape("plain", "plain");
    check_escape("<script>alert(\"x\");</script>",
                 "&lt;script&gt;alert(&quot;x&quot;);&lt;/script&gt;");
    check_escape("aren't & more", "aren&#39;t &amp; more");
    check_escape("\xe2\x80\x94 \xe3\x83\x95", "\xe2\x80\x94 \xe3\x83\x95");
    check_escape("&&", "&amp;&amp;");

    buf_put_int(&b, 0);
    buf_putc(&b, ' ');
    buf_put_int(&b, -42);
    buf_putc(&b, ' ');
    buf_put_int(&b, LONG_MIN);
    buf_putc(&b, '\0');
    is_str(b.data, "0 -42 -9223372036854775808", "buf_put_int");
    buf_reset(&b);
    ok(b.len == 0 && !b.failed, "buf_reset empties");
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "0123456789");
    ok(b.len == 1000000 && !b.failed, "buf grows to 1 MB");
    buf_free(&b);
    return done_testing();
}
