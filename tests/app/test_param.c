/* test_param.c: the TechEmpower clamping table (app/param.c). */
#include "../../app/param.c"

#include "harness.h"

static const struct {
    const char *query;
    int want;
} cases[] = {
    {NULL, 1},
    {"", 1},
    {"queries", 1},
    {"queries=", 1},
    {"queries=2", 2},
    {"queries=0", 1},
    {"queries=-5", 1},
    {"queries=foo", 1},
    {"queries=5foo", 1},
    {"queries=1", 1},
    {"queries=20", 20},
    {"queries=500", 500},
    {"queries=501", 500},
    {"queries=99999999999999999999999", 500},
    {"queries=+7", 1}, /* '+' is a space in a query string */
    {"queries=%2B7", 7},
    {"queries=007", 7},
    {"queries=%32%30", 20},
    {"queries=%2", 1},
    {"queries= 5", 1},
    {"queries=5&queries=7", 5},
    {"a=1&queries=9&b=2", 9},
    {"xqueries=9", 1},
    {"queriesx=9", 1},
    {"count=9", 1},
};

int
main(void)
{
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];

        snprintf(name, sizeof(name), "param_count(\"%s\")",
                 cases[i].query ? cases[i].query : "(null)");
        is_int(param_count(cases[i].query, "queries"), cases[i].want, name);
    }
    is_int(param_count("count=12", "count"), 12, "another name");
    return done_testing();
}
