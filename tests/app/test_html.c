/* test_html.c: HTML escaping (app/html.c). */
#include "../../app/html.c"

#include "harness.h"

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
    check_escape("", "");
    check_escape("plain", "plain");
    check_escape("<script>alert(\"x\");</script>",
                 "&lt;script&gt;alert(&quot;x&quot;);&lt;/script&gt;");
    check_escape("aren't & more", "aren&#39;t &amp; more");
    check_escape("\xe2\x80\x94 \xe3\x83\x95", "\xe2\x80\x94 \xe3\x83\x95");
    check_escape("&&", "&amp;&amp;");

    return done_testing();
}
