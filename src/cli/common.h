/* What every pqmtls subcommand shares: exit codes, messages, passphrases, options. */
#ifndef PQM_CLI_COMMON_H
#define PQM_CLI_COMMON_H

#include <getopt.h>
#include <stddef.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define PQM_PASS_ENV "PQMTLS_PASSPHRASE"
#define PQM_KEY_PASS_ENV "PQMTLS_KEY_PASSPHRASE"
#define CLI_PASS_MAX 1024

struct cli_cmd {
    const char *name; /* "pki init" */
    int (*run)(int argc, char **argv);
    const char *summary;
};

/* "pqmtls CMD: MESSAGE" on stderr; returns EXIT_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same plus a pointer to --help; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct cli_pass {
    char buf[CLI_PASS_MAX + 1];
    size_t len;
    int have;
};

/* A passphrase from FILE (its first line), else the environment variable ENV, else a
 * prompt on the terminal (twice when CONFIRM). Leaves have = 0 when none of them is
 * available. Returns 0, or -1 after printing the reason. */
int cli_read_pass(const char *cmd, const char *file, const char *env, const char *prompt,
                  int confirm, struct cli_pass *out);
void cli_pass_clear(struct cli_pass *p);
/* Parses a positive decimal integer in [min, max]; -1 when it is not one. */
long cli_parse_long(const char *s, long min, long max);
struct sockaddr_storage;
/* "HOST:PORT" (HOST may be [v6], empty for any address when PASSIVE) into an address;
 * 0, or -1 when it is not HOST:PORT or does not resolve. */
int cli_resolve(const char *text, int passive, struct sockaddr_storage *ss, unsigned *len);
/* Resets getopt for a new parse. */
void cli_getopt_reset(void);

#endif
