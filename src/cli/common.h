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
/* For an option table shared by several subcommands: -1 when option NAME is one of the
 * space-separated words of ALLOWED ("json all"), as a whole word, so that
 * "passphrase-file" is not found inside "key-passphrase-file"; else EXIT_USAGE, said. */
int cli_option_applies(const char *cmd, const char *name, const char *allowed);
/* TEXT on standard output, flushed: EXIT_OK, or EXIT_FAIL saying so when it could not be
 * written (a full disk, a closed pipe), so that a script does not take half a file. */
int cli_write_stdout(const char *cmd, const char *text);

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
/* A duration "90s", "30m", "24h", "7d" (a bare number is seconds) into seconds, within
 * [min, max]; -1 when it is not one. */
long long cli_parse_duration(const char *s, long long min, long long max);
/* The validity of a certificate from --days N, --hours N or --lifetime DURATION (OPT
 * names which), 1h to 36500d, in seconds; -1 after a usage message. *GIVEN remembers
 * the option seen, so that a second one of the three is refused. */
long long cli_parse_lifetime(const char *cmd, const char *opt, const char *arg,
                             const char **given);
/* SECONDS as "90d", "24h", "30m" or "45s": the largest unit that divides it (days from
 * two days on). */
void cli_format_duration(long long seconds, char *out, size_t outlen);
struct sockaddr_storage;
/* "HOST:PORT" (HOST may be [v6], empty for any address when PASSIVE) into an address;
 * 0, or -1 when it is not HOST:PORT or does not resolve. */
int cli_resolve(const char *text, int passive, struct sockaddr_storage *ss, unsigned *len);
struct pqm_pki;
/* Opens the PKI in DIR; NULL after printing the reason. */
struct pqm_pki *cli_pki_open(const char *cmd, const char *dir);
/* When the PKI's CA keys are encrypted, reads the PKI passphrase (--passphrase-file
 * PASSFILE, PQMTLS_PASSPHRASE or a prompt) into PASS and gives it to PKI. Returns -1 when
 * done, else the exit status after printing the reason. */
int cli_pki_unlock(const char *cmd, struct pqm_pki *pki, const char *passfile,
                   struct cli_pass *pass);
/* The usage error for getopt_long's answer C (':' a missing value, else an unknown
 * option); returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);
/* Resets getopt for a new parse. */
void cli_getopt_reset(void);

#endif
