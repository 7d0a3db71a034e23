/* test_fortune.c: byte-order sorting and the exact page (app/fortune.c). */
#include "../../app/fortune.c"

#include <stdlib.h>

#include "harness.h"

static const struct {
    int id;
    const char *message;
} table[] = {
#include "fortunes.inc"
};

#define NTABLE (int)(sizeof(table) / sizeof(table[0]))

static char *
read_golden(const char *name, size_t *len)
{
    char path[512];
    const char *src = __FILE__, *slash = strrchr(src, '/');
    FILE *f;
    char *data;
    long n;

    snprintf(path, sizeof(path), "%.*s/golden/%s",
             slash ? (int)(slash - src) : 1, slash ? src : ".", name);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    data = malloc((size_t)n + 1);
    if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return data;
}

int
main(void)
{
    struct fortune f[NTABLE + 1];
    struct buf b = {0};
    char *golden;
    size_t glen = 0;
    int i, sorted = 1;

    for (i = 0; i < NTABLE; i++) {
        f[i].id = table[i].id;
        f[i].message = table[i].message;
        f[i].len = strlen(table[i].message);
    }
    f[NTABLE].id = 0;
    f[NTABLE].message = "Additional fortune added at request time.";
    f[NTABLE].len = strlen(f[NTABLE].message);
    fortune_sort(f, NTABLE + 1);
    for (i = 1; i < NTABLE + 1; i++)
        if (strcmp(f[i - 1].message, f[i].message) > 0)
            sorted = 0;
    ok(sorted, "sorted by message in byte order");
    is_int(f[0].id, 11, "'<script>' sorts first ('<' < 'A')");
    is_int(f[NTABLE].id, 12, "Japanese sorts last (UTF-8 lead bytes)");
    is_int(f[NTABLE - 1].id, 1, "lower-case 'fortune:' after upper case");

    fortune_render(&b, f, NTABLE + 1);
    golden = read_golden("fortunes.html", &glen);
    ok(golden != NULL, "golden page readable");
    ok(golden != NULL && b.len == glen && memcmp(b.data, golden, glen) == 0,
       "page matches golden/fortunes.html byte for byte");
    if (golden != NULL && (b.len != glen || memcmp(b.data, golden, glen)))
        printf("# got: %.*s\n", (int)b.len, b.data);
    free(golden);
    buf_free(&b);
    return done_testing();
}
