#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "util/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int pqm__net_resolve(const char *text, int passive, struct sockaddr_storage *ss, socklen_t *len,
                     struct pqm_err *e)
{
    char host[256];
    if (snprintf(host, sizeof(host), "%s", text) >= (int)sizeof(host))
        return pqm__err_set(e, "'%.64s...' is too long for HOST:PORT", text);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return pqm__err_set(e, "'%s' is not HOST:PORT", text);
    *colon = '\0';
    const char *port = colon + 1;
    char *h = host;
    if (h[0] == '[') {
        size_t n = strlen(h);
        if (n < 2 || h[n - 1] != ']')
            return pqm__err_set(e, "'%s' is not [IPv6]:PORT", text);
        h[n - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(h[0] ? h : NULL, port, &hints, &res);
    if (rc != 0)
        return pqm__err_set(e, "'%s': %s", text, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int pqm__net_address_free(const struct sockaddr_storage *ss, socklen_t len, const char *text,
                          const char *who, struct pqm_err *e)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pqm__err_set(e, "listen %s: socket: %s", text, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = 0;
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        int err = errno;
        rc = pqm__err_set(e, "listen %s: %s%s%s%s", text, strerror(err),
                          err == EADDRINUSE ? " (is another " : "", err == EADDRINUSE ? who : "",
                          err == EADDRINUSE ? " running?)" : "");
    }
    close(fd);
    return rc;
}

int pqm__net_listen(const struct sockaddr_storage *ss, socklen_t len, const char *text,
                    struct pqm_err *e)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pqm__err_set(e, "listen %s: socket: %s", text, strerror(errno));
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 1024) != 0) {
        pqm__err_set(e, "listen %s: %s", text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int pqm__net_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

int pqm__usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}
