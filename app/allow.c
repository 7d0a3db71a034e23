/*
 * allow.c: see allow.h.
 */
#include "allow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

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
    const void *addr;
    size_t len;
    int i;

    if (al->n == 0 || sa->ss_family == AF_UNIX)
        return 1;
    if (sa->ss_family == AF_INET) {
        addr = &((const struct sockaddr_in *)sa)->sin_addr;
        len = 4;
    } else if (sa->ss_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        len = 16;
    } else {
        return 0;
    }
    for (i = 0; i < al->n; i++)
        if (al->a[i].family == sa->ss_family &&
            memcmp(al->a[i].addr, addr, len) == 0)
            return 1;
    return 0;
}
