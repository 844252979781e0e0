/* pqmtls request URL --cert F --key F --ca F [-X M] [-H H]... [-d DATA] [-o FILE] [-i]
 * [--json] [--fail] ... : one HTTP/1.1 request over mutual TLS, through the client API
 * of include/pqmtls/client.h only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const char *const CMD = "request";

#define MAX_HEADERS 64
#define BODY_MAX (1024L * 1024 * 1024)

struct req_opts {
    const char *url, *cert, *key, *ca, *key_pass_file, *method, *data, *out, *groups;
    const char *resolve;
    const char *headers[MAX_HEADERS];
    size_t nheaders;
    const char *crls[16], *pins[16];
    size_t ncrl, npin;
    int show_headers, json, fail_on_status, require_pq, system_ca;
    double timeout;
    char host[256], port[16], path[4096];
};

struct resp {
    FILE *out;
    int status;
    int show_headers;
    int complete;
    int in_value;
    char reason[128];
    size_t reason_len;
    long long body_bytes;
    int failed_write;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void help(void)
{
    printf(
        "Usage: pqmtls request URL --cert FILE --key FILE --ca FILE [OPTION...]\n\n"
        "Sends one HTTP/1.1 request over mutual TLS and prints the response body. The server's\n"
        "certificate must chain to --ca alone (never the system store), carry the URL's host\n"
        "name (or IP address) and the extended key usage serverAuth; TLS 1.3 only, the key\n"
        "exchange X25519MLKEM768 first. Every refusal says why on standard error.\n\n"
        "Options:\n"
        "  --cert FILE                 the client certificate (PEM; a chain file works too)\n"
        "  --key FILE                  its key (PKCS#8, encrypted or not)\n"
        "  --key-passphrase-file FILE  the key's passphrase (or %s)\n"
        "  --ca FILE                   the only CAs the server may chain to (server-ca-chain.pem)\n"
        "  --crl FILE                  a CRL of a server CA (repeat; then every CA needs one)\n"
        "  --system-ca                 also trust the system's CA store (off by default)\n"
        "  --pin sha256:BASE64         accept only this server public key (SHA-256 of its\n"
        "                              SubjectPublicKeyInfo, base64; repeat for several)\n"
        "  --require-pq                refuse a server that negotiates a classical group\n"
        "  --groups LIST               key exchange groups (default X25519MLKEM768:X25519)\n"
        "  --resolve HOST:PORT:ADDR    connect to ADDR for HOST:PORT (the certificate is still\n"
        "                              checked for HOST)\n"
        "  -X, --request METHOD        the method (default GET, or POST with -d)\n"
        "  -H, --header 'Name: value'  a request header (repeat)\n"
        "  -d, --data DATA|@FILE|@-    the request body: text, a file's bytes, or stdin\n"
        "  -o, --output FILE           write the body to FILE instead of stdout\n"
        "  -i, --include               print the status line and headers before the body\n"
        "  --json                      print a JSON summary (status, TLS version, group,\n"
        "                              signature algorithm, server subject, timings) instead\n"
        "  --fail                      exit 1 when the HTTP status is 400 or more\n"
        "  --timeout SECONDS           give up on a silent server (default 30)\n\n"
        "Exit status: 0 done, 1 a TLS, verification or connection failure (or, with --fail,\n"
        "an HTTP error status), 2 a usage error.\n\n"
        "Example:\n"
        "  pqmtls request https://api.example.com:8443/orders \\\n"
        "      --resolve api.example.com:8443:127.0.0.1 --cert pki/issued/client1.crt.pem \\\n"
        "      --key pki/issued/client1.key.pem --ca pki/server-ca-chain.pem \\\n"
        "      -X POST -H 'Content-Type: application/json' -d @order.json\n",
        PQM_KEY_PASS_ENV);
}

/* https://HOST[:PORT]/PATH (HOST may be [v6]). */
static int parse_url(struct req_opts *o)
{
    const char *u = o->url;
    if (strncmp(u, "https://", 8) != 0)
        return -1;
    u += 8;
    const char *slash = strchr(u, '/');
    size_t auth_len = slash != NULL ? (size_t)(slash - u) : strlen(u);
    char auth[300];
    if (auth_len == 0 || auth_len >= sizeof(auth))
        return -1;
    memcpy(auth, u, auth_len);
    auth[auth_len] = '\0';
    snprintf(o->path, sizeof(o->path), "%s", slash != NULL ? slash : "/");
    if (strpbrk(o->path, " \r\n\t") != NULL)
        return -1;
    char *port = NULL;
    if (auth[0] == '[') {
        char *end = strchr(auth, ']');
        if (end == NULL)
            return -1;
        *end = '\0';
        snprintf(o->host, sizeof(o->host), "%s", auth + 1);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return -1;
    } else {
        port = strrchr(auth, ':');
        if (port != NULL)
            *port++ = '\0';
        snprintf(o->host, sizeof(o->host), "%s", auth);
    }
    if (o->host[0] == '\0' || strchr(o->host, '@') != NULL)
        return -1;
    long p = port != NULL ? cli_parse_long(port, 1, 65535) : 443;
    if (p < 0)
        return -1;
    snprintf(o->port, sizeof(o->port), "%ld", p);
    return 0;
}

/* --resolve HOST:PORT:ADDR matching the URL: the address to connect to, else NULL. */
static const char *resolved(const struct req_opts *o, char *buf, size_t len)
{
    if (o->resolve == NULL)
        return NULL;
    char want[300];
    snprintf(want, sizeof(want), "%s:%s:", o->host, o->port);
    if (strncmp(o->resolve, want, strlen(want)) != 0)
        return NULL;
    snprintf(buf, len, "%s", o->resolve + strlen(want));
    size_t n = strlen(buf);
    if (n >= 2 && buf[0] == '[' && buf[n - 1] == ']') {
        memmove(buf, buf + 1, n - 2);
        buf[n - 2] = '\0';
    }
    return buf;
}

static int read_body(const char *data, char **out, size_t *len)
{
    if (data[0] != '@') {
        *out = strdup(data);
        *len = strlen(data);
        return *out != NULL ? 0 : -1;
    }
    FILE *f = strcmp(data, "@-") == 0 ? stdin : fopen(data + 1, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b != NULL) {
        if (n == cap) {
            if (cap >= (size_t)BODY_MAX)
                break;
            char *g = realloc(b, cap * 2);
            if (g == NULL)
                break;
            b = g;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int err = b == NULL || ferror(f) || !feof(f);
    if (f != stdin)
        fclose(f);
    if (err) {
        free(b);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

static int write_all(struct pqm_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = pqm_conn_write(c, p, n);
        if (w == PQM_WANT_POLLIN || w == PQM_WANT_POLLOUT) {
            errno = ETIMEDOUT;
            return -2; /* the socket's timeout */
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* --- the response --------------------------------------------------------------------- */

static int r_status(llhttp_t *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    size_t room = sizeof(r->reason) - 1 - r->reason_len;
    size_t n = len < room ? len : room;
    memcpy(r->reason + r->reason_len, at, n);
    r->reason_len += n;
    r->reason[r->reason_len] = '\0';
    return 0;
}

static int r_status_complete(llhttp_t *p)
{
    struct resp *r = p->data;
    r->status = p->status_code;
    if (r->show_headers)
        fprintf(r->out, "HTTP/%d.%d %d %s\r\n", p->http_major, p->http_minor, r->status,
                r->reason);
    return 0;
}

static int r_field(llhttp_t *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    if (r->show_headers) {
        if (r->in_value)
            fputs("\r\n", r->out);
        fwrite(at, 1, len, r->out);
    }
    r->in_value = 0;
    return 0;
}

static int r_value(llhttp_t *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    if (r->show_headers) {
        if (!r->in_value)
            fputs(": ", r->out);
        fwrite(at, 1, len, r->out);
    }
    r->in_value = 1;
    return 0;
}

static int r_headers_complete(llhttp_t *p)
{
    struct resp *r = p->data;
    if (r->show_headers)
        fputs(r->in_value ? "\r\n\r\n" : "\r\n", r->out);
    return 0;
}

static int r_body(llhttp_t *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    if (fwrite(at, 1, len, r->out) != len)
        r->failed_write = 1;
    r->body_bytes += (long long)len;
    return 0;
}

static int r_complete(llhttp_t *p)
{
    ((struct resp *)p->data)->complete = 1;
    return 0;
}

static char timeout_msg[128];

static int read_response(struct pqm_conn *c, struct resp *r, double timeout, const char **why)
{
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_status = r_status;
    s.on_status_complete = r_status_complete;
    s.on_header_field = r_field;
    s.on_header_value = r_value;
    s.on_headers_complete = r_headers_complete;
    s.on_body = r_body;
    s.on_message_complete = r_complete;
    llhttp_t p;
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = r;
    char buf[16384];
    while (!r->complete) {
        ssize_t n = pqm_conn_read(c, buf, sizeof(buf));
        if (n == PQM_WANT_POLLIN || n == PQM_WANT_POLLOUT) { /* the socket's timeout */
            snprintf(timeout_msg, sizeof(timeout_msg),
                     "timed out: the server sent nothing for %g s (--timeout)", timeout);
            *why = timeout_msg;
            return -1;
        }
        if (n < 0) {
            *why = pqm_conn_error(c);
            return -1;
        }
        llhttp_errno_t e = n == 0 ? llhttp_finish(&p) : llhttp_execute(&p, buf, (size_t)n);
        if (e != HPE_OK) {
            *why = llhttp_get_error_reason(&p) ? llhttp_get_error_reason(&p) : "malformed response";
            return -1;
        }
        if (n == 0 && !r->complete) {
            *why = "the server closed the connection before the end of the response";
            return -1;
        }
    }
    return 0;
}

/* A TCP connection to HOST:PORT, reads and writes bounded by TIMEOUT seconds. */
static int tcp_connect(const char *host, const char *port, double timeout, char *why, size_t len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, len, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    struct timeval tv = {(time_t)timeout, (long)((timeout - (double)(time_t)timeout) * 1e6)};
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, len, "cannot connect to %s port %s: %s", host, port, strerror(err));
    return fd;
}

/* --- the command ---------------------------------------------------------------------- */

enum { O_CERT = 256, O_KEY, O_CA, O_CRL, O_PIN, O_REQPQ, O_GROUPS, O_RESOLVE, O_KEYPASS,
       O_JSON, O_FAIL, O_TIMEOUT, O_SYSCA, O_HELP };

static int parse(int argc, char **argv, struct req_opts *o)
{
    static const struct option opts[] = {
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"ca", required_argument, NULL, O_CA},
        {"crl", required_argument, NULL, O_CRL},
        {"pin", required_argument, NULL, O_PIN},
        {"require-pq", no_argument, NULL, O_REQPQ},
        {"groups", required_argument, NULL, O_GROUPS},
        {"resolve", required_argument, NULL, O_RESOLVE},
        {"key-passphrase-file", required_argument, NULL, O_KEYPASS},
        {"request", required_argument, NULL, 'X'},
        {"header", required_argument, NULL, 'H'},
        {"data", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'},
        {"include", no_argument, NULL, 'i'},
        {"json", no_argument, NULL, O_JSON},
        {"fail", no_argument, NULL, O_FAIL},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"system-ca", no_argument, NULL, O_SYSCA},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":X:H:d:o:i", opts, NULL)) != -1) {
        switch (c) {
        case O_CERT:
            o->cert = optarg;
            break;
        case O_KEY:
            o->key = optarg;
            break;
        case O_CA:
            o->ca = optarg;
            break;
        case O_CRL:
        case O_PIN: {
            const char **v = c == O_CRL ? o->crls : o->pins;
            size_t *n = c == O_CRL ? &o->ncrl : &o->npin;
            if (*n == 16)
                return cli_usage(CMD, "at most 16 %s", c == O_CRL ? "--crl" : "--pin");
            v[(*n)++] = optarg;
            break;
        }
        case O_REQPQ:
            o->require_pq = 1;
            break;
        case O_GROUPS:
            o->groups = optarg;
            break;
        case O_RESOLVE:
            o->resolve = optarg;
            break;
        case O_KEYPASS:
            o->key_pass_file = optarg;
            break;
        case 'X':
            if (optarg[0] == '\0' || strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(optarg))
                return cli_usage(CMD, "-X: '%s' is not an upper-case method", optarg);
            o->method = optarg;
            break;
        case 'H':
            if (o->nheaders == MAX_HEADERS)
                return cli_usage(CMD, "at most %d -H", MAX_HEADERS);
            if (strchr(optarg, ':') == NULL || strpbrk(optarg, "\r\n") != NULL)
                return cli_usage(CMD, "-H '%s': 'Name: value' expected", optarg);
            o->headers[o->nheaders++] = optarg;
            break;
        case 'd':
            o->data = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'i':
            o->show_headers = 1;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_FAIL:
            o->fail_on_status = 1;
            break;
        case O_TIMEOUT:
            o->timeout = strtod(optarg, NULL);
            if (!(o->timeout > 0 && o->timeout <= 3600))
                return cli_usage(CMD, "--timeout: '%s' is not 0 to 3600 seconds", optarg);
            break;
        case O_SYSCA:
            o->system_ca = 1;
            break;
        case O_HELP:
            help();
            return EXIT_OK + 100;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage(CMD, optind >= argc ? "URL is required" : "one URL only");
    o->url = argv[optind];
    if (parse_url(o) != 0)
        return cli_usage(CMD, "'%s' is not an https:// URL", o->url);
    if (o->cert == NULL || o->key == NULL || o->ca == NULL)
        return cli_usage(CMD, "--cert, --key and --ca are required");
    return 0;
}

static struct pqm_client_config *configure(const struct req_opts *o)
{
    struct pqm_client_config *cfg = pqm_client_config_new();
    if (cfg == NULL) {
        cli_fail(CMD, "out of memory");
        return NULL;
    }
    struct cli_pass pass = {{0}, 0, 0};
    int rc = pqm_client_config_set_cert_file(cfg, o->cert) | pqm_client_config_set_key_file(cfg, o->key) |
             pqm_client_config_set_ca_file(cfg, o->ca);
    for (size_t i = 0; rc == 0 && i < o->ncrl; i++)
        rc = pqm_client_config_add_crl_file(cfg, o->crls[i]);
    for (size_t i = 0; rc == 0 && i < o->npin; i++)
        rc = pqm_client_config_add_pin(cfg, o->pins[i]);
    if (rc == 0 && o->groups != NULL)
        rc = pqm_client_config_set_groups(cfg, o->groups);
    if (o->require_pq)
        pqm_client_config_require_pq(cfg);
    if (o->system_ca)
        pqm_client_config_use_system_ca(cfg);
    if (rc == 0 && (o->key_pass_file != NULL || getenv(PQM_KEY_PASS_ENV) != NULL)) {
        if (cli_read_pass(CMD, o->key_pass_file, PQM_KEY_PASS_ENV, NULL, 0, &pass) != 0) {
            pqm_client_config_free(cfg);
            return NULL;
        }
        if (pass.have)
            rc = pqm_client_config_set_key_passphrase(cfg, pass.buf, pass.len);
        cli_pass_clear(&pass);
    }
    if (rc == 0)
        rc = pqm_client_config_load(cfg);
    if (rc != 0) {
        cli_fail(CMD, "%s", pqm_client_config_error(cfg));
        pqm_client_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static int send_request(struct pqm_conn *c, const struct req_opts *o, const char *body,
                        size_t body_len)
{
    const char *method = o->method != NULL ? o->method : o->data != NULL ? "POST" : "GET";
    char head[16384];
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n", method,
                     o->path, strchr(o->host, ':') ? "[" : "", o->host,
                     strchr(o->host, ':') ? "]" : "", strcmp(o->port, "443") ? ":" : "",
                     strcmp(o->port, "443") ? o->port : "");
    int has_ua = 0;
    for (size_t i = 0; i < o->nheaders && n > 0 && (size_t)n < sizeof(head); i++) {
        has_ua |= strncasecmp(o->headers[i], "user-agent:", 11) == 0;
        n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n", o->headers[i]);
    }
    if (n > 0 && (size_t)n < sizeof(head) && !has_ua)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "User-Agent: pqmtls/%s\r\n",
                      pqm_version());
    if (n > 0 && (size_t)n < sizeof(head) && o->data != NULL)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", body_len);
    if (n > 0 && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Connection: close\r\n\r\n");
    if (n <= 0 || (size_t)n >= sizeof(head))
        return cli_usage(CMD, "the request head is too large");
    int wr = write_all(c, head, (size_t)n);
    if (wr == 0 && body_len > 0)
        wr = write_all(c, body, body_len);
    if (wr == -2)
        return cli_fail(CMD, "timed out: the server took nothing for %g s (--timeout)", o->timeout);
    if (wr != 0)
        return cli_fail(CMD, "%s", pqm_conn_error(c));
    return 0;
}

static void json_str(FILE *f, const char *key, const char *v)
{
    fprintf(f, "\"%s\":\"", key);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void print_json(struct pqm_conn *c, int status, double t0, double t1, double t2,
                       double t3)
{
    printf("{\"status\":%d,", status);
    json_str(stdout, "tls_version", pqm_conn_version(c));
    putchar(',');
    json_str(stdout, "group", pqm_conn_group(c));
    putchar(',');
    json_str(stdout, "sigalg", pqm_conn_sigalg(c));
    putchar(',');
    json_str(stdout, "server_subject", pqm_conn_peer_subject(c));
    printf(",\"verify\":\"ok\",\"timings_ms\":{\"connect\":%.3f,\"handshake\":%.3f,"
           "\"total\":%.3f}}\n",
           (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t0) * 1e3);
}

int cmd_request(int argc, char **argv)
{
    struct req_opts o = {.timeout = 30};
    int rc = parse(argc, argv, &o);
    if (rc == EXIT_OK + 100)
        return EXIT_OK;
    if (rc != 0)
        return rc;
    char *body = NULL;
    size_t body_len = 0;
    if (o.data != NULL && read_body(o.data, &body, &body_len) != 0)
        return cli_fail(CMD, "-d %s: %s", o.data, strerror(errno ? errno : EIO));
    struct pqm_client_config *cfg = configure(&o);
    if (cfg == NULL) {
        free(body);
        return EXIT_FAIL;
    }
    struct pqm_conn *c = pqm_conn_new(cfg);
    FILE *out = NULL;
    rc = EXIT_FAIL;
    if (c == NULL) {
        cli_fail(CMD, "out of memory");
        goto done;
    }
    char addr[256];
    const char *target = resolved(&o, addr, sizeof(addr));
    /* The TCP connection first (timed apart), then the handshake on it. */
    double t0 = now_s();
    char why_connect[256];
    int fd = tcp_connect(target != NULL ? target : o.host, o.port, o.timeout, why_connect,
                         sizeof(why_connect));
    if (fd < 0) {
        cli_fail(CMD, "%s: %s", o.url, why_connect);
        goto done;
    }
    double t1 = now_s();
    if (pqm_conn_connect_fd(c, fd, 1, o.host) != 0) {
        cli_fail(CMD, "%s: %s", o.url, pqm_conn_error(c));
        goto done;
    }
    double t2 = now_s();
    if (send_request(c, &o, body, body_len) != 0)
        goto done;
    out = o.json ? fopen("/dev/null", "w") : o.out != NULL ? fopen(o.out, "w") : stdout;
    if (out == NULL) {
        cli_fail(CMD, "-o %s: %s", o.out, strerror(errno));
        goto done;
    }
    struct resp r = {.out = out, .show_headers = o.show_headers && !o.json};
    const char *why = NULL;
    if (read_response(c, &r, o.timeout, &why) != 0) {
        cli_fail(CMD, "%s: %s", o.url, why);
        goto done;
    }
    double t3 = now_s();
    if (fflush(out) != 0 || r.failed_write) {
        cli_fail(CMD, "%s: cannot write the body", o.out != NULL ? o.out : "stdout");
        goto done;
    }
    if (o.json)
        print_json(c, r.status, t0, t1, t2, t3);
    pqm_conn_close(c);
    rc = o.fail_on_status && r.status >= 400 ? EXIT_FAIL : EXIT_OK;
    if (rc != EXIT_OK)
        fprintf(stderr, "pqmtls %s: %s: HTTP status %d\n", CMD, o.url, r.status);
done:
    if (out != NULL && out != stdout)
        fclose(out);
    pqm_conn_free(c);
    pqm_client_config_free(cfg);
    free(body);
    return rc;
}
