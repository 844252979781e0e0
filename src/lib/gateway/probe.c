/* A health probe of the admin listener: one plain-HTTP GET with a deadline (see
 * pqm_gateway_probe in gateway.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <pqmtls/gateway.h>

#include "util/err.h"
#include "util/timeutil.h"

#define PROBE_RESPONSE_MAX 4096 /* the status line and the start of the body are enough */

struct probe_url {
    char host[256], port[8], path[1024];
};

/* http://HOST:PORT[/PATH], HOST a name, an IPv4 address or [IPv6]. The path goes into
 * the request line as it is, so it may hold no space or control character. */
static int parse_url(const char *url, struct probe_url *u, struct pqm_err *e)
{
    if (strncmp(url, "http://", 7) != 0)
        return pqm__err_set(e, "not an http:// URL (the admin listener has no TLS)");
    const char *auth = url + 7, *slash = strchr(auth, '/');
    size_t alen = slash != NULL ? (size_t)(slash - auth) : strlen(auth);
    const char *colon = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == ':')
            colon = auth + i;
    if (colon == NULL || colon == auth || (size_t)(colon - auth) + 1 == alen ||
        (auth[0] == '[' && colon[-1] != ']'))
        return pqm__err_set(e, "the URL needs a HOST:PORT");
    const char *h = auth[0] == '[' ? auth + 1 : auth;
    size_t hlen = (size_t)(colon - h) - (auth[0] == '[' ? 1 : 0);
    size_t plen = alen - (size_t)(colon - auth) - 1;
    if (hlen >= sizeof(u->host) || plen >= sizeof(u->port) ||
        strspn(colon + 1, "0123456789") < plen)
        return pqm__err_set(e, "bad host or port");
    snprintf(u->host, sizeof(u->host), "%.*s", (int)hlen, h);
    snprintf(u->port, sizeof(u->port), "%.*s", (int)plen, colon + 1);
    const char *path = slash != NULL ? slash : "/";
    if (strlen(path) >= sizeof(u->path))
        return pqm__err_set(e, "the path is too long");
    for (const char *c = path; *c != '\0'; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return pqm__err_set(e, "the path holds a space or a control character");
    snprintf(u->path, sizeof(u->path), "%s", path);
    return 0;
}

/* Waits for EVENTS on FD until DEADLINE. */
static int wait_fd(int fd, short events, double deadline, const char *what, struct pqm_err *e)
{
    for (;;) {
        double left = deadline - pqm__mono_seconds();
        if (left <= 0)
            return pqm__err_set(e, "timed out %s", what);
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return pqm__err_set(e, "poll: %s", strerror(errno));
    }
}

static int connect_one(const struct addrinfo *ai, double deadline, struct pqm_err *e)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pqm__err_set(e, "socket: %s", strerror(errno));
    int err = 0;
    socklen_t elen = sizeof(err);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS)
            err = errno;
        else if (wait_fd(fd, POLLOUT, deadline, "connecting", e) != 0)
            err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
    }
    if (err == 0)
        return fd;
    close(fd);
    return err == ETIMEDOUT ? -1 : pqm__err_set(e, "connect: %s", strerror(err));
}

static int connect_url(const struct probe_url *u, double deadline, struct pqm_err *e)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0)
        return pqm__err_set(e, "%s: %s", u->host, gai_strerror(rc));
    int fd = -1;
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline, e);
    freeaddrinfo(res);
    return fd;
}

static int send_request(int fd, const struct probe_url *u, double deadline, struct pqm_err *e)
{
    char req[1536];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pqmtls-probe\r\n"
                     "Connection: close\r\n\r\n",
                     u->path, u->host);
    if (n < 0 || (size_t)n >= sizeof(req))
        return pqm__err_set(e, "the request is too long");
    for (size_t off = 0; off < (size_t)n;) {
        if (wait_fd(fd, POLLOUT, deadline, "sending the request", e) != 0)
            return -1;
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w < 0)
            return pqm__err_set(e, "send: %s", strerror(errno));
        off += (size_t)w;
    }
    return 0;
}

/* Reads until the peer closes or BUF is full; *LEN bytes, NUL-terminated. */
static int read_response(int fd, char *buf, size_t cap, size_t *len, double deadline,
                         struct pqm_err *e)
{
    *len = 0;
    while (*len + 1 < cap) {
        if (wait_fd(fd, POLLIN, deadline, "waiting for the answer", e) != 0)
            return -1;
        ssize_t r = recv(fd, buf + *len, cap - 1 - *len, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r < 0)
            return pqm__err_set(e, "recv: %s", strerror(errno));
        if (r == 0)
            break;
        *len += (size_t)r;
    }
    buf[*len] = '\0';
    return 0;
}

/* "HTTP/1.x NNN ..." into *STATUS, the body's first line (printable ASCII) into DETAIL. */
static int parse_answer(const char *buf, int *status, char *detail, size_t detaillen,
                        struct pqm_err *e)
{
    if (strncmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' ||
        strspn(buf + 9, "0123456789") != 3 || (buf[12] != ' ' && buf[12] != '\r'))
        return pqm__err_set(e, "the answer is not HTTP/1.x");
    *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (*status < 100)
        return pqm__err_set(e, "the answer's status %d is not one", *status);
    const char *body = strstr(buf, "\r\n\r\n");
    body = body != NULL ? body + 4 : "";
    size_t n = 0;
    while (n + 1 < detaillen && body[n] >= ' ' && body[n] < 0x7f)
        n++;
    if (detaillen > 0)
        snprintf(detail, detaillen, "%.*s", (int)n, body);
    return 0;
}

int pqm_gateway_probe(const char *url, double timeout, int *status, char *detail,
                      size_t detaillen)
{
    struct pqm_err e = {{0}};
    struct probe_url u;
    char buf[PROBE_RESPONSE_MAX];
    size_t len = 0;
    int fd = -1, rc = -1;
    double deadline = pqm__mono_seconds() + (timeout > 0 ? timeout : 1);
    *status = 0;
    GUARD(parse_url(url, &u, &e));
    fd = connect_url(&u, deadline, &e);
    if (fd < 0)
        goto cleanup;
    GUARD(send_request(fd, &u, deadline, &e));
    GUARD(read_response(fd, buf, sizeof(buf), &len, deadline, &e));
    ENSURE(len > 0, &e, "the connection closed without an answer");
    GUARD(parse_answer(buf, status, detail, detaillen, &e));
    rc = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && detaillen > 0)
        snprintf(detail, detaillen, "%s", pqm__err_str(&e));
    return rc;
}
