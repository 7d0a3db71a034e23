/*
 * allow.c: see allow.h.
 */
#include "allow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* The prefix of an IPv4-mapped IPv6 address, ::ffff:a.b.c.d. */
static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};

/*
 * unmap: an IPv4-mapped IPv6 address (what an IPv4 peer of a [::]
 * listener looks like) becomes the IPv4 address it carries, in place, so
 * that one entry, 127.0.0.1 or ::ffff:127.0.0.1, admits that host on
 * either kind of listener.  Any other address is left as it is.
 */
static void
unmap(int *family, unsigned char addr[16])
{
    if (*family != AF_INET6 || memcmp(addr, v4mapped, sizeof(v4mapped)) != 0)
        return;
    memmove(addr, addr + 12, 4);
    memset(addr + 4, 0, 12);
    *family = AF_INET;
}

int
allow_parse(struct allow *al, const char *list, char *err, size_t errlen)
{
    char item[INET6_ADDRSTRLEN + 1];
    size_t len;

    al->n = 0;
    while (list != NULL && *list != '\0') {
        list += strspn(list, " \t");
        len = strcspn(list, ", \t");
        if (len > 0) {
            if (al->n == ALLOW_MAX) {
                snprintf(err, errlen, "more than %d addresses", ALLOW_MAX);
                return -1;
            }
            snprintf(item, sizeof(item), "%.*s", (int)len, list);
            if (len < sizeof(item) &&
                inet_pton(AF_INET, item, al->a[al->n].addr) == 1) {
                al->a[al->n++].family = AF_INET;
            } else if (len < sizeof(item) &&
                       inet_pton(AF_INET6, item, al->a[al->n].addr) == 1) {
                al->a[al->n++].family = AF_INET6;
                unmap(&al->a[al->n - 1].family, al->a[al->n - 1].addr);
            } else {
                snprintf(err, errlen, "'%.*s' is not an IPv4 or IPv6 address",
                         (int)(len < 64 ? len : 64), list);
                return -1;
            }
        }
        list += len;
        list += strspn(list, " \t");
        if (*list == ',')
            list++;
        else if (*list != '\0') {
            snprintf(err, errlen, "a blank inside an address near '%.20s'",
                     list);
            return -1;
        }
    }
    return 0;
}

int
allow_ok(const struct allow *al, const struct sockaddr_storage *sa)
{
    unsigned char addr[16] = {0};
    size_t len;
    int i, family = sa->ss_family;

    if (al->n == 0 || family == AF_UNIX)
        return 1;
    if (family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        unmap(&family, addr);
    } else {
        return 0;
    }
    len = family == AF_INET ? 4 : 16;
    for (i = 0; i < al->n; i++)
        if (al->a[i].family == family && memcmp(al->a[i].addr, addr, len) == 0)
            return 1;
    return 0;
}
