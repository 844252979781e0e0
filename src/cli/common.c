#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <pqmtls/pki.h>

__attribute__((format(printf, 2, 0))) static void vmsg(const char *cmd, const char *fmt,
                                                            va_list ap)
{
    fprintf(stderr, "pqmtls %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
    return EXIT_FAIL;
}

static int word_in(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = list; *s != '\0';) {
        size_t len = strcspn(s, " ");
        if (len == n && n > 0 && strncmp(s, name, n) == 0)
            return 1;
        s += len;
        s += strspn(s, " ");
    }
    return 0;
}

int cli_option_applies(const char *cmd, const char *name, const char *allowed)
{
    return word_in(allowed, name) ? -1 : cli_usage(cmd, "--%s does not apply here", name);
}

int cli_write_stdout(const char *cmd, const char *text)
{
    errno = 0;
    if (fputs(text, stdout) == EOF || fflush(stdout) != 0 || ferror(stdout))
        return cli_fail(cmd, "cannot write to standard output: %s",
                        errno != 0 ? strerror(errno) : "write error");
    return EXIT_OK;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'pqmtls %s --help'.\n", cmd);
    return EXIT_USAGE;
}

void cli_pass_clear(struct cli_pass *p)
{
    volatile char *b = p->buf;
    for (size_t i = 0; i < sizeof(p->buf); i++)
        b[i] = 0;
    p->len = 0;
    p->have = 0;
}

static int set_pass(const char *cmd, const char *what, const char *s, size_t n,
                    struct cli_pass *out)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    if (n == 0)
        return cli_fail(cmd, "%s: the passphrase is empty", what), -1;
    if (n > CLI_PASS_MAX)
        return cli_fail(cmd, "%s: the passphrase is longer than %d bytes", what, CLI_PASS_MAX),
               -1;
    memcpy(out->buf, s, n);
    out->buf[n] = '\0';
    out->len = n;
    out->have = 1;
    return 0;
}

static int read_pass_file(const char *cmd, const char *file, struct cli_pass *out)
{
    char buf[CLI_PASS_MAX + 2];
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return cli_fail(cmd, "%s: cannot open the passphrase file: %s", file, strerror(errno)),
               -1;
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (line == NULL)
        return cli_fail(cmd, "%s: the passphrase file is empty", file), -1;
    size_t n = strlen(buf);
    if (n == sizeof(buf) - 1 && buf[n - 1] != '\n')
        return cli_fail(cmd, "%s: the passphrase is longer than %d bytes", file, CLI_PASS_MAX),
               -1;
    int rc = set_pass(cmd, file, buf, n, out);
    memset(buf, 0, sizeof(buf));
    return rc;
}

static int prompt_once(const char *prompt, char *buf, size_t len)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios old, quiet;
    int have_term = tcgetattr(fd, &old) == 0;
    if (have_term) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* the prompt is a courtesy; reading still works */
    }
    size_t n = 0;
    char c;
    while (n + 1 < len && read(fd, &c, 1) == 1 && c != '\n')
        buf[n++] = c;
    buf[n] = '\0';
    if (have_term)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* as above */
    }
    close(fd);
    return (int)n;
}

int cli_read_pass(const char *cmd, const char *file, const char *env, const char *prompt,
                  int confirm, struct cli_pass *out)
{
    cli_pass_clear(out);
    if (file != NULL)
        return read_pass_file(cmd, file, out);
    const char *v = env != NULL ? getenv(env) : NULL;
    if (v != NULL)
        return set_pass(cmd, env, v, strlen(v), out);
    if (!isatty(STDIN_FILENO))
        return 0;
    char a[CLI_PASS_MAX + 2], b[CLI_PASS_MAX + 2];
    int n = prompt_once(prompt, a, sizeof(a));
    if (n < 0)
        return 0;
    if (confirm) {
        if (prompt_once("Repeat the passphrase: ", b, sizeof(b)) < 0 || strcmp(a, b) != 0) {
            memset(a, 0, sizeof(a));
            memset(b, 0, sizeof(b));
            return cli_fail(cmd, "the passphrases do not match"), -1;
        }
        memset(b, 0, sizeof(b));
    }
    int rc = set_pass(cmd, "prompt", a, (size_t)n, out);
    memset(a, 0, sizeof(a));
    return rc;
}

long cli_parse_long(const char *s, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    return v;
}

long long cli_parse_duration(const char *s, long long min, long long max)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0 || s[0] == '-' || s[0] == '+')
        return -1;
    long long unit = 1;
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (v > max / unit || v * unit < min || v * unit > max)
        return -1;
    return v * unit;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    if (c == ':')
        return cli_usage(cmd, "%s needs a value", argv[optind - 1]);
    return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
}

long long cli_parse_lifetime(const char *cmd, const char *opt, const char *arg,
                             const char **given)
{
    static const long long max = 36500LL * 86400;
    if (*given != NULL && strcmp(*given, opt) != 0)
        return cli_usage(cmd, "--%s and --%s both set the lifetime: give one", *given, opt), -1;
    *given = opt;
    long long v, unit = strcmp(opt, "days") == 0 ? 86400 : strcmp(opt, "hours") == 0 ? 3600 : 0;
    if (unit != 0) {
        long n = cli_parse_long(arg, 1, (long)(max / unit));
        v = n < 0 ? -1 : n * unit;
    } else {
        v = cli_parse_duration(arg, 3600, max);
    }
    if (v < 0)
        return cli_usage(cmd, "--%s '%s' is not a lifetime from 1h to 36500d (--days 90, --hours "
                              "24, --lifetime 36h)",
                         opt, arg),
               -1;
    return v;
}

void cli_format_duration(long long seconds, char *out, size_t outlen)
{
    const char *unit = "s";
    long long n = seconds;
    if (seconds >= 2 * 86400 && seconds % 86400 == 0)
        n = seconds / 86400, unit = "d";
    else if (seconds != 0 && seconds % 3600 == 0)
        n = seconds / 3600, unit = "h";
    else if (seconds != 0 && seconds % 60 == 0)
        n = seconds / 60, unit = "m";
    snprintf(out, outlen, "%lld%s", n, unit);
}

void cli_getopt_reset(void)
{
    optind = 0; /* glibc: a full reinitialisation */
    opterr = 0; /* unknown options are reported by the subcommand, with its name */
}

int cli_resolve(const char *text, int passive, struct sockaddr_storage *ss, unsigned *len)
{
    char host[256];
    if (snprintf(host, sizeof(host), "%s", text) >= (int)sizeof(host))
        return -1;
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    char *h = host;
    if (h[0] == '[') {
        size_t n = strlen(h);
        if (n < 2 || h[n - 1] != ']')
            return -1;
        h[n - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res) != 0)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (unsigned)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

struct pqm_pki *cli_pki_open(const char *cmd, const char *dir)
{
    struct pqm_pki *pki = pqm_pki_new();
    if (pki == NULL) {
        cli_fail(cmd, "out of memory");
        return NULL;
    }
    if (pqm_pki_open(pki, dir) != 0) {
        cli_fail(cmd, "%s", pqm_pki_error(pki));
        pqm_pki_free(pki);
        return NULL;
    }
    return pki;
}

int cli_pki_unlock(const char *cmd, struct pqm_pki *pki, const char *passfile,
                   struct cli_pass *pass)
{
    if (!pqm_pki_is_encrypted(pki))
        return -1;
    if (cli_read_pass(cmd, passfile, PQM_PASS_ENV, "PKI passphrase: ", 0, pass) != 0)
        return EXIT_FAIL;
    if (!pass->have)
        return cli_usage(cmd, "the PKI's CA keys are encrypted: give --passphrase-file F or set %s",
                         PQM_PASS_ENV);
    if (pqm_pki_set_passphrase(pki, pass->buf, pass->len) != 0)
        return cli_fail(cmd, "%s", pqm_pki_error(pki));
    return -1;
}
