/* pqmtls tunnel --listen ADDR --upstream HOST:PORT --cert F --key F --ca F: gives a legacy
 * service an mTLS identity. Every plaintext connection accepted on ADDR becomes an mTLS
 * connection to the upstream, made with the client API (include/pqmtls/client.h) in its
 * non-blocking mode; one thread serves every connection (epoll). */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const char *const CMD = "tunnel";

#define TUN_BUF (64 * 1024)

struct side_buf {
    char data[TUN_BUF];
    size_t off, len;
};

enum tstate { T_CONNECTING, T_HANDSHAKE, T_OPEN };

struct tun {
    int plain, tls_fd;
    struct pqm_conn *conn;
    enum tstate st;
    int plain_eof, tls_eof;
    int write_want, read_want; /* PQM_WANT_POLLIN / POLLOUT of the last TLS write, read */
    struct side_buf up, down; /* plain -> TLS, TLS -> plain */
    int dead;                 /* closed: freed once the current batch of events is done */
    struct tun *next_dead;
};

struct tunnel {
    struct tun *dead; /* closed in this batch of events, freed after it */
    struct pqm_client_config *cfg;
    struct sockaddr_storage up_addr;
    socklen_t up_len;
    char servername[256];
    int ep, lfd, sfd, tfd;
    long open;
    double watch_interval; /* seconds between looks at the files; 0: SIGHUP only */
};

/* epoll data: a pointer with its low bit telling the side (the struct is aligned). */
static void *tag(struct tun *t, int tls_side)
{
    return (void *)((uintptr_t)t | (uintptr_t)tls_side);
}

static void watch(struct tunnel *tn, int fd, void *data, uint32_t ev, int op)
{
    struct epoll_event e = {.events = ev, .data.ptr = data};
    epoll_ctl(tn->ep, op, fd, &e);
}

static void tun_close(struct tunnel *tn, struct tun *t, const char *why)
{
    if (why != NULL)
        fprintf(stderr, "pqmtls %s: connection closed: %s\n", CMD, why);
    if (t->conn != NULL) {
        if (t->st == T_OPEN)
            pqm_conn_close(t->conn); /* close_notify, best effort */
        pqm_conn_free(t->conn);
    }
    if (t->tls_fd >= 0)
        close(t->tls_fd); /* the tunnel's socket: the connection was given it to use only */
    close(t->plain);
    tn->open--;
    /* The other socket's event may still be in this batch: free the struct after it. */
    t->dead = 1;
    t->next_dead = tn->dead;
    tn->dead = t;
}

static void tun_arm(struct tunnel *tn, struct tun *t)
{
    uint32_t pe = 0, te = 0;
    if (!t->plain_eof && t->up.len < TUN_BUF)
        pe |= EPOLLIN;
    if (t->down.len > 0)
        pe |= EPOLLOUT;
    if (t->st == T_CONNECTING) {
        te = EPOLLOUT;
    } else if (t->st == T_HANDSHAKE) {
        te = t->read_want == PQM_WANT_POLLOUT ? EPOLLOUT : EPOLLIN;
    } else {
        if ((!t->tls_eof && t->down.len < TUN_BUF) || t->write_want == PQM_WANT_POLLIN)
            te |= EPOLLIN;
        if ((t->up.len > 0 && t->write_want != PQM_WANT_POLLIN) ||
            t->read_want == PQM_WANT_POLLOUT)
            te |= EPOLLOUT;
    }
    watch(tn, t->plain, tag(t, 0), pe, EPOLL_CTL_MOD);
    watch(tn, t->tls_fd, tag(t, 1), te, EPOLL_CTL_MOD);
}

/* Where B's free space starts, its bytes moved to the front first. */
static char *side_room(struct side_buf *b)
{
    if (b->off > 0 && b->len > 0)
        memmove(b->data, b->data + b->off, b->len);
    b->off = 0;
    return b->data + b->len;
}

/* TLS -> down buffer, until it is full or TLS has nothing more; -1 on failure. */
static int tls_to_down(struct tun *t, const char **why)
{
    while (!t->tls_eof && t->down.len < TUN_BUF) {
        ssize_t n = pqm_conn_read(t->conn, side_room(&t->down), TUN_BUF - t->down.len);
        if (n > 0)
            t->down.len += (size_t)n;
        else if (n == 0)
            t->tls_eof = 1;
        else if (n == PQM_WANT_POLLIN || n == PQM_WANT_POLLOUT) {
            t->read_want = (int)n == PQM_WANT_POLLOUT ? PQM_WANT_POLLOUT : 0;
            break;
        } else {
            *why = pqm_conn_error(t->conn);
            return -1;
        }
    }
    return 0;
}

/* Down buffer -> plain socket, as much as it takes; -1 on failure. */
static int down_to_plain(struct tun *t, const char **why)
{
    while (t->down.len > 0) {
        ssize_t n = send(t->plain, t->down.data + t->down.off, t->down.len, MSG_NOSIGNAL);
        if (n > 0) {
            t->down.off += (size_t)n;
            t->down.len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else if (n < 0 && errno != EINTR) {
            *why = strerror(errno);
            return -1;
        }
    }
    if (t->down.len == 0)
        t->down.off = 0;
    return 0;
}

/* Moves what can move; returns -1 when the tunnel connection is over. */
static int tun_pump(struct tunnel *tn, struct tun *t, const char **why)
{
    if (t->st == T_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(t->tls_fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == EINPROGRESS)
            return 0;
        if (err != 0) {
            *why = strerror(err);
            return -1;
        }
        t->st = T_HANDSHAKE;
        int rc = pqm_conn_connect_fd(t->conn, t->tls_fd, 0, tn->servername);
        if (rc == -1) {
            *why = pqm_conn_error(t->conn);
            return -1;
        }
        t->read_want = rc < 0 ? rc : 0;
        if (rc != 0)
            return 0;
        t->st = T_OPEN;
    }
    if (t->st == T_HANDSHAKE) {
        int rc = pqm_conn_handshake(t->conn);
        if (rc == -1) {
            *why = pqm_conn_error(t->conn);
            return -1;
        }
        t->read_want = rc < 0 ? rc : 0;
        if (rc != 0)
            return 0;
        t->st = T_OPEN;
    }
    t->read_want = t->write_want = 0;
    /* plain -> up buffer */
    while (!t->plain_eof && t->up.len < TUN_BUF) {
        ssize_t n = read(t->plain, side_room(&t->up), TUN_BUF - t->up.len);
        if (n > 0)
            t->up.len += (size_t)n;
        else if (n == 0)
            t->plain_eof = 1;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        else if (errno != EINTR) {
            *why = strerror(errno);
            return -1;
        }
    }
    /* up buffer -> TLS */
    while (t->up.len > 0) {
        ssize_t n = pqm_conn_write(t->conn, t->up.data + t->up.off, t->up.len);
        if (n > 0) {
            t->up.off += (size_t)n;
            t->up.len -= (size_t)n;
            continue;
        }
        if (n == PQM_WANT_POLLIN || n == PQM_WANT_POLLOUT) {
            t->write_want = (int)n;
            break;
        }
        *why = pqm_conn_error(t->conn);
        return -1;
    }
    if (t->up.len == 0)
        t->up.off = 0;
    /* TLS -> down buffer -> plain. A record only partly read (the buffer was full) stays
     * inside TLS, where the socket will not report it: once the plain side took
     * everything, read on, so that no tail waits for bytes that never come. */
    do {
        if (tls_to_down(t, why) != 0 || down_to_plain(t, why) != 0)
            return -1;
    } while (t->down.len == 0 && !t->tls_eof && pqm_conn_pending(t->conn) > 0);
    /* Either side done and what it sent delivered: the connection is over. */
    if ((t->plain_eof && t->up.len == 0) || (t->tls_eof && t->down.len == 0))
        return -1;
    return 0;
}

static void accept_all(struct tunnel *tn)
{
    for (;;) {
        int fd = accept4(tn->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct tun *t = calloc(1, sizeof(*t));
        struct pqm_conn *conn = t != NULL ? pqm_conn_new(tn->cfg) : NULL;
        int up = conn != NULL ? socket(tn->up_addr.ss_family,
                                       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                              : -1;
        if (up < 0 || (connect(up, (struct sockaddr *)&tn->up_addr, tn->up_len) != 0 &&
                       errno != EINPROGRESS)) {
            fprintf(stderr, "pqmtls %s: cannot reach the upstream: %s\n", CMD, strerror(errno));
            if (up >= 0)
                close(up);
            pqm_conn_free(conn);
            free(t);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        t->plain = fd;
        t->tls_fd = up;
        t->conn = conn;
        t->st = T_CONNECTING;
        tn->open++;
        watch(tn, fd, tag(t, 0), 0, EPOLL_CTL_ADD);
        watch(tn, up, tag(t, 1), EPOLLOUT, EPOLL_CTL_ADD);
    }
}

static void help(void)
{
    printf("Usage: pqmtls tunnel --listen ADDR:PORT --upstream HOST:PORT --cert FILE --key FILE\n"
           "                     --ca FILE [--resolve HOST:PORT:ADDR] [--key-passphrase-file F]\n"
           "                     [--crl FILE]... [--pin sha256:B64]... [--require-pq] [--groups L]\n"
           "                     [--watch-interval SECONDS]\n\n"
           "Gives a service that speaks plain TCP (HTTP or anything else) an mTLS identity: each\n"
           "connection accepted on --listen is carried to --upstream over mutual TLS with the\n"
           "client certificate, checked as `pqmtls request` checks (the server's certificate\n"
           "must chain to --ca alone, name HOST, carry serverAuth; TLS 1.3; X25519MLKEM768\n"
           "first). Bytes flow both ways until either side closes. One thread serves every\n"
           "connection. The certificate, key, CA and CRL files are read again on SIGHUP and\n"
           "when one of them changes on disk (`pqmtls pki renew` replaced them): new\n"
           "connections use them, open ones keep theirs; files that do not load (a key that\n"
           "does not match its certificate) leave the running ones in place. SIGTERM or\n"
           "SIGINT stops.\n\n"
           "  --watch-interval SECONDS  how often the files are checked for changes\n"
           "                            (default 2; 0: only on SIGHUP)\n\n"
           "Example (the legacy service talks to 127.0.0.1:9000):\n"
           "  pqmtls tunnel --listen 127.0.0.1:9000 --upstream api.example.com:8443 \\\n"
           "      --cert pki/issued/client1.crt.pem --key pki/issued/client1.key.pem \\\n"
           "      --ca pki/server-ca-chain.pem\n");
}

/* Seconds, fractions allowed (the gateway's watch_interval takes the same). */
static int parse_interval(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0 && v <= 3600))
        return -1;
    *out = v;
    return 0;
}

enum { O_LISTEN = 256, O_UPSTREAM, O_CERT, O_KEY, O_CA, O_CRL, O_PIN, O_REQPQ, O_GROUPS,
       O_RESOLVE, O_KEYPASS, O_WATCH, O_HELP };

static int configure(struct tunnel *tn, int argc, char **argv, const char **listen_at,
                     const char **upstream, const char **resolve_opt)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"upstream", required_argument, NULL, O_UPSTREAM},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"ca", required_argument, NULL, O_CA},
        {"crl", required_argument, NULL, O_CRL},
        {"pin", required_argument, NULL, O_PIN},
        {"require-pq", no_argument, NULL, O_REQPQ},
        {"groups", required_argument, NULL, O_GROUPS},
        {"resolve", required_argument, NULL, O_RESOLVE},
        {"key-passphrase-file", required_argument, NULL, O_KEYPASS},
        {"watch-interval", required_argument, NULL, O_WATCH},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cert = NULL, *key = NULL, *ca = NULL, *keypass = NULL;
    int c, rc = 0;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            *listen_at = optarg;
            break;
        case O_UPSTREAM:
            *upstream = optarg;
            break;
        case O_CERT:
            cert = optarg;
            break;
        case O_KEY:
            key = optarg;
            break;
        case O_CA:
            ca = optarg;
            break;
        case O_CRL:
            rc |= pqm_client_config_add_crl_file(tn->cfg, optarg);
            break;
        case O_PIN:
            rc |= pqm_client_config_add_pin(tn->cfg, optarg);
            break;
        case O_REQPQ:
            pqm_client_config_require_pq(tn->cfg);
            break;
        case O_GROUPS:
            rc |= pqm_client_config_set_groups(tn->cfg, optarg);
            break;
        case O_RESOLVE:
            *resolve_opt = optarg;
            break;
        case O_KEYPASS:
            keypass = optarg;
            break;
        case O_WATCH:
            if (parse_interval(optarg, &tn->watch_interval) != 0)
                return cli_usage(CMD, "--watch-interval '%s' is not a number of seconds from 0 "
                                      "to 3600 (0.5 and 2 are)",
                                 optarg);
            break;
        case O_HELP:
            help();
            return EXIT_OK + 100;
        default:
            return cli_bad_option(CMD, c, argv);
        }
        if (rc != 0)
            return cli_usage(CMD, "%s", pqm_client_config_error(tn->cfg));
    }
    if (optind != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (*listen_at == NULL || *upstream == NULL || cert == NULL || key == NULL || ca == NULL)
        return cli_usage(CMD, "--listen, --upstream, --cert, --key and --ca are required");
    rc = pqm_client_config_set_cert_file(tn->cfg, cert) | pqm_client_config_set_key_file(tn->cfg, key) |
         pqm_client_config_set_ca_file(tn->cfg, ca);
    if (rc == 0 && (keypass != NULL || getenv(PQM_KEY_PASS_ENV) != NULL)) {
        struct cli_pass pass = {{0}, 0, 0};
        if (cli_read_pass(CMD, keypass, PQM_KEY_PASS_ENV, NULL, 0, &pass) != 0)
            return EXIT_FAIL;
        if (pass.have)
            rc = pqm_client_config_set_key_passphrase(tn->cfg, pass.buf, pass.len);
        cli_pass_clear(&pass);
    }
    if (rc != 0 || pqm_client_config_load(tn->cfg) != 0)
        return cli_fail(CMD, "%s", pqm_client_config_error(tn->cfg));
    return 0;
}

static int open_sockets(struct tunnel *tn, const char *listen_at, const char *upstream,
                        const char *resolve_opt)
{
    struct sockaddr_storage lss;
    unsigned llen = 0, ulen = 0;
    if (cli_resolve(listen_at, 1, &lss, &llen) != 0)
        return cli_usage(CMD, "--listen: cannot resolve '%s' (ADDR:PORT)", listen_at);
    /* The certificate must name the host of --upstream; --resolve HOST:PORT:ADDR only
     * says where to connect. */
    const char *colon = strrchr(upstream, ':');
    if (colon == NULL || colon == upstream)
        return cli_usage(CMD, "--upstream '%s' is not HOST:PORT", upstream);
    int hl = (int)(colon - upstream);
    if (upstream[0] == '[' && hl >= 2 && upstream[hl - 1] == ']')
        snprintf(tn->servername, sizeof(tn->servername), "%.*s", hl - 2, upstream + 1);
    else
        snprintf(tn->servername, sizeof(tn->servername), "%.*s", hl, upstream);
    char connect_to[300];
    snprintf(connect_to, sizeof(connect_to), "%s", upstream);
    if (resolve_opt != NULL) {
        size_t n = strlen(upstream);
        if (strncmp(resolve_opt, upstream, n) != 0 || resolve_opt[n] != ':')
            return cli_usage(CMD, "--resolve '%s' does not match --upstream '%s'", resolve_opt,
                             upstream);
        const char *addr = resolve_opt + n + 1;
        snprintf(connect_to, sizeof(connect_to), "%s%s%s%s", strchr(addr, ':') ? "[" : "", addr,
                 strchr(addr, ':') ? "]" : "", colon);
    }
    if (cli_resolve(connect_to, 0, &tn->up_addr, &ulen) != 0)
        return cli_fail(CMD, "--upstream: cannot resolve '%s'", connect_to);
    tn->up_len = (socklen_t)ulen;
    tn->lfd = socket(lss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (tn->lfd < 0 || setsockopt(tn->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(tn->lfd, (struct sockaddr *)&lss, llen) != 0 || listen(tn->lfd, 1024) != 0)
        return cli_fail(CMD, "--listen %s: %s", listen_at, strerror(errno));
    return 0;
}

static void reload(struct tunnel *tn, const char *why)
{
    if (pqm_client_config_load(tn->cfg) != 0)
        fprintf(stderr, "pqmtls %s: reload (%s) refused, the running configuration stays: %s\n",
                CMD, why, pqm_client_config_error(tn->cfg));
    else
        fprintf(stderr, "pqmtls %s: reloaded the certificate, key, CA and CRL files (%s)\n", CMD,
                why);
}

/* A periodic timer for the file watch; none when the interval is 0. */
static int start_watch(struct tunnel *tn)
{
    if (tn->watch_interval <= 0)
        return 0;
    tn->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tn->tfd < 0)
        return -1;
    time_t sec = (time_t)tn->watch_interval;
    long nsec = (long)((tn->watch_interval - (double)sec) * 1e9);
    if (sec == 0 && nsec == 0)
        nsec = 1;
    struct itimerspec its = {{sec, nsec}, {sec, nsec}};
    return timerfd_settime(tn->tfd, 0, &its, NULL);
}

static void on_watch(struct tunnel *tn)
{
    uint64_t ticks;
    while (read(tn->tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks)) {
    }
    if (pqm_client_config_changed(tn->cfg))
        reload(tn, "a file changed");
}

static int run(struct tunnel *tn)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    tn->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    tn->ep = epoll_create1(EPOLL_CLOEXEC);
    if (tn->sfd < 0 || tn->ep < 0 || start_watch(tn) != 0)
        return cli_fail(CMD, "cannot set up the event loop: %s", strerror(errno));
    static int lfd_tag, sfd_tag, tfd_tag;
    watch(tn, tn->lfd, &lfd_tag, EPOLLIN, EPOLL_CTL_ADD);
    watch(tn, tn->sfd, &sfd_tag, EPOLLIN, EPOLL_CTL_ADD);
    if (tn->tfd >= 0)
        watch(tn, tn->tfd, &tfd_tag, EPOLLIN, EPOLL_CTL_ADD);
    fprintf(stderr, "pqmtls %s: listening, carrying connections to %s over mTLS\n", CMD,
            tn->servername);
    for (;;) {
        struct epoll_event evs[256];
        int n = epoll_wait(tn->ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            void *d = evs[i].data.ptr;
            if (d == &lfd_tag) {
                accept_all(tn);
                continue;
            }
            if (d == &tfd_tag) {
                on_watch(tn);
                continue;
            }
            if (d == &sfd_tag) {
                struct signalfd_siginfo si;
                while (read(tn->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    if (si.ssi_signo != SIGHUP)
                        return EXIT_OK;
                    reload(tn, "SIGHUP");
                }
                continue;
            }
            struct tun *t = (struct tun *)((uintptr_t)d & ~(uintptr_t)1);
            if (t->dead)
                continue;
            const char *why = NULL;
            if (tun_pump(tn, t, &why) != 0)
                tun_close(tn, t, why);
            else
                tun_arm(tn, t);
        }
        while (tn->dead != NULL) {
            struct tun *t = tn->dead;
            tn->dead = t->next_dead;
            free(t);
        }
    }
}

int cmd_tunnel(int argc, char **argv)
{
    struct tunnel tn = {.lfd = -1, .sfd = -1, .ep = -1, .tfd = -1, .watch_interval = 2};
    tn.cfg = pqm_client_config_new();
    if (tn.cfg == NULL)
        return cli_fail(CMD, "out of memory");
    const char *listen_at = NULL, *upstream = NULL, *resolve_opt = NULL;
    int rc = configure(&tn, argc, argv, &listen_at, &upstream, &resolve_opt);
    if (rc == 0)
        rc = open_sockets(&tn, listen_at, upstream, resolve_opt);
    if (rc == 0)
        rc = run(&tn);
    if (rc == EXIT_OK + 100)
        rc = EXIT_OK;
    pqm_client_config_free(tn.cfg);
    return rc;
}
