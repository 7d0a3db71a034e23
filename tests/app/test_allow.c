/*
 * test_allow.c: FCGI_WEB_SERVER_ADDRS, parsed and applied to peers
 * (app/allow.c).
 */
#include "../../app/allow.c"

#include <sys/un.h>

#include "harness.h"

static char err[256];

static int
parse(struct allow *al, const char *list)
{
    err[0] = '\0';
    return allow_parse(al, list, err, sizeof(err));
}

/* peer: a sockaddr_storage for an address in text (or AF_UNIX). */
static struct sockaddr_storage
peer(int family, const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)family;
    if (family == AF_INET)
        inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr);
    else if (family == AF_INET6)
        inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr);
    else if (family == AF_UNIX)
        snprintf(((struct sockaddr_un *)&ss)->sun_path,
                 sizeof(((struct sockaddr_un *)&ss)->sun_path), "%s", text);
    return ss;
}

static void
test_parse(void)
{
    struct allow al;
    unsigned char v4[4], v6[16];

    is_int(parse(&al, NULL), 0, "unset: accepted");
    is_int(al.n, 0, "unset: everyone");
    is_int(parse(&al, ""), 0, "empty: accepted");
    is_int(al.n, 0, "empty: everyone");

    is_int(parse(&al, "127.0.0.1"), 0, "one IPv4 address");
    inet_pton(AF_INET, "127.0.0.1", v4);
    ok(al.n == 1 && al.a[0].family == AF_INET &&
           memcmp(al.a[0].addr, v4, 4) == 0,
       "stored as AF_INET 127.0.0.1");

    is_int(parse(&al, "::1"), 0, "one IPv6 address");
    inet_pton(AF_INET6, "::1", v6);
    ok(al.n == 1 && al.a[0].family == AF_INET6 &&
           memcmp(al.a[0].addr, v6, 16) == 0,
       "stored as AF_INET6 ::1");

    is_int(parse(&al, " \t10.0.0.1 ,\t2001:db8::7 , 192.168.1.2\t"), 0,
           "blanks around the addresses");
    ok(al.n == 3 && al.a[0].family == AF_INET && al.a[1].family == AF_INET6 &&
           al.a[2].family == AF_INET,
       "three addresses, in order, of their families (n=%d)", al.n);

    is_int(parse(&al, ",10.0.0.1,,, ,::1,"), 0, "empty entries");
    is_int(al.n, 2, "empty entries are skipped");
    is_int(parse(&al, " , ,"), 0, "nothing but separators");
    is_int(al.n, 0, "nothing but separators: everyone");
}

static void
test_bad(void)
{
    static const struct {
        const char *list;
        const char *says;
    } cases[] = {
        {"localhost", "'localhost' is not an IPv4 or IPv6 address"},
        {"10.0.0.1,nginx", "'nginx' is not an IPv4 or IPv6 address"},
        {"10.0.0.0/8", "'10.0.0.0/8' is not"},
        {"1.2.3", "'1.2.3' is not"},
        {"256.0.0.1", "'256.0.0.1' is not"},
        {"::1::2", "'::1::2' is not"},
        {"10.0.0.1 10.0.0.2", "a blank inside an address near '10.0.0.2'"},
        {"10.0.0.1;10.0.0.2", "'10.0.0.1;10.0.0.2' is not"},
    };
    struct allow al;
    char list[512], want[64];
    size_t i;
    int n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = parse(&al, cases[i].list);

        if (!ok(r == -1 && strstr(err, cases[i].says) != NULL,
                "'%s' is rejected: %s", cases[i].list, err))
            printf("#   want a message with: %s\n", cases[i].says);
    }

    /* Longer than any address: refused whole, the message kept short. */
    memset(list, '1', 300);
    list[300] = '\0';
    is_int(parse(&al, list), -1, "a 300-character entry is rejected");
    ok(strstr(err, "is not an IPv4 or IPv6 address") != NULL &&
           strlen(err) < 120,
       "its message quotes a part of it (%zu characters)", strlen(err));

    /* ALLOW_MAX addresses fit, one more does not. */
    list[0] = '\0';
    for (n = 0; n < ALLOW_MAX; n++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list),
                 "%s10.0.0.%d", n ? "," : "", n + 1);
    is_int(parse(&al, list), 0, "ALLOW_MAX addresses");
    is_int(al.n, ALLOW_MAX, "all of them kept");
    snprintf(list + strlen(list), sizeof(list) - strlen(list), ",::1");
    is_int(parse(&al, list), -1, "ALLOW_MAX + 1 addresses are rejected");
    snprintf(want, sizeof(want), "more than %d addresses", ALLOW_MAX);
    is_str(err, want, "saying so");
}

/*
 * test_ok: peers judged against lists, a row each.  On a [::] listener an
 * IPv4 peer arrives as ::ffff:a.b.c.d; it is judged as the IPv4 host it
 * is, whichever way the list names it.
 */
static void
test_ok(void)
{
    static const struct {
        const char *list;
        int family;
        const char *addr;
        int admitted;
        const char *name;
    } rows[] = {
        {"", AF_INET, "203.0.113.9", 1, "no list: any IPv4 peer"},
        {"", AF_INET6, "2001:db8::9", 1, "no list: any IPv6 peer"},
        {"127.0.0.1, ::1, 192.0.2.10", AF_INET, "127.0.0.1", 1,
         "a listed IPv4 peer"},
        {"127.0.0.1, ::1, 192.0.2.10", AF_INET, "192.0.2.10", 1,
         "the last listed IPv4 peer"},
        {"127.0.0.1, ::1, 192.0.2.10", AF_INET, "127.0.0.2", 0,
         "an IPv4 peer not listed"},
        {"127.0.0.1, ::1, 192.0.2.10", AF_INET6, "::1", 1,
         "a listed IPv6 peer"},
        {"127.0.0.1, ::1, 192.0.2.10", AF_INET6, "::2", 0,
         "an IPv6 peer not listed"},
        {"127.0.0.1, ::1, 192.0.2.10", AF_UNIX, "/run/tfb.sock", 1,
         "a unix-socket peer always"},
        {"127.0.0.1, ::1, 192.0.2.10", AF_UNSPEC, "", 0,
         "a peer of another family never"},
        /* The families are compared too. */
        {"::1", AF_INET, "0.0.0.0", 0,
         "an IPv4 peer against an IPv6-only list"},
        {"0.0.0.0", AF_INET6, "::", 0,
         "an IPv6 peer against an IPv4-only list"},
        /* Mapped peers. */
        {"127.0.0.1", AF_INET6, "::ffff:127.0.0.1", 1,
         "::ffff:127.0.0.1 is admitted by 127.0.0.1"},
        {"127.0.0.1", AF_INET6, "::ffff:127.0.0.2", 0,
         "::ffff:127.0.0.2 is not"},
        {"127.0.0.1", AF_INET6, "::127.0.0.1", 0,
         "::127.0.0.1 (IPv4-compatible, not mapped) is not either"},
        {"127.0.0.1", AF_INET6, "::1", 0, "nor is ::1, for an IPv4-only list"},
        {"::ffff:192.0.2.10", AF_INET, "192.0.2.10", 1,
         "a mapped entry admits 192.0.2.10 on an IPv4 listener"},
        {"::ffff:192.0.2.10", AF_INET6, "::ffff:192.0.2.10", 1,
         "and ::ffff:192.0.2.10 on a [::] one"},
        {"::1, 10.0.0.1", AF_INET6, "::ffff:10.0.0.1", 1,
         "a mixed list: the mapped peer by its IPv4 entry"},
        {"::1, 10.0.0.1", AF_INET6, "::1", 1, "a mixed list: ::1 as before"},
    };
    struct sockaddr_storage ss;
    struct allow al;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        parse(&al, rows[i].list);
        ss = peer(rows[i].family, rows[i].addr);
        is_int(!!allow_ok(&al, &ss), rows[i].admitted, rows[i].name);
    }
}

/* test_mapped: a mapped entry is stored as the IPv4 address it holds. */
static void
test_mapped(void)
{
    struct allow al;

    is_int(parse(&al, "::ffff:192.0.2.10"), 0, "a mapped entry is accepted");
    ok(al.n == 1 && al.a[0].family == AF_INET &&
           memcmp(al.a[0].addr, "\300\0\2\12", 4) == 0,
       "and stored as the IPv4 address 192.0.2.10");
}

int
main(void)
{
    test_parse();
    test_bad();
    test_ok();
    test_mapped();
    return done_testing();
}
