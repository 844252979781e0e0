/* pqmtls pki list | tree | check */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"
#include "records.h"

enum { O_PKI = 256, O_JSON, O_ALL, O_FORMAT, O_HELP };

static const struct option opts[] = {
    {"pki", required_argument, NULL, O_PKI}, {"json", no_argument, NULL, O_JSON},
    {"all", no_argument, NULL, O_ALL},       {"format", required_argument, NULL, O_FORMAT},
    {"help", no_argument, NULL, O_HELP},     {NULL, 0, NULL, 0},
};

struct query_args {
    const char *pki, *format;
    int json, all, help;
};

/* ALLOWED: the options this subcommand takes besides --pki and --help. */
static int parse(const char *cmd, int argc, char **argv, const char *allowed,
                 struct query_args *a)
{
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *name = c >= O_PKI && c <= O_HELP ? opts[c - O_PKI].name : "";
        int rc = c != O_PKI && c != O_HELP && c != ':' && c != '?'
                     ? cli_option_applies(cmd, name, allowed)
                     : -1;
        if (rc != -1)
            return rc;
        switch (c) {
        case O_PKI:
            a->pki = optarg;
            break;
        case O_JSON:
            a->json = 1;
            break;
        case O_ALL:
            a->all = 1;
            break;
        case O_FORMAT:
            a->format = optarg;
            break;
        case O_HELP:
            a->help = 1;
            return EXIT_OK;
        default:
            return cli_bad_option(cmd, c, argv);
        }
    }
    if (optind != argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (a->pki == NULL)
        return cli_usage(cmd, "--pki DIR is required");
    return -1;
}

int cmd_pki_list(int argc, char **argv)
{
    static const char *const CMD = "pki list";
    struct query_args a = {0};
    int rc = parse(CMD, argc, argv, "json all", &a);
    if (a.help) {
        printf("Usage: pqmtls pki list --pki DIR [--all] [--json]\n\n"
               "Lists every certificate of the inventory: CAs and issued certificates, with\n"
               "kind, status, expiry, serial and names. --all also lists issuances that were\n"
               "interrupted and rolled back (status 'aborted'; their serials are never reused).\n"
               "--json gives every recorded field.\n");
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    struct pqm_pki *pki = cli_pki_open(CMD, a.pki);
    if (pki == NULL)
        return EXIT_FAIL;
    rc = records_print(pki, a.pki, a.json ? RECORDS_JSON : RECORDS_TABLE, a.all) == 0
             ? EXIT_OK
             : EXIT_FAIL;
    pqm_pki_free(pki);
    return rc;
}

/* --- tree ------------------------------------------------------------------------- */

enum tree_format { TREE_TEXT, TREE_MERMAID, TREE_DOT };

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

/* A label without characters that would break Mermaid or DOT syntax. */
static void safe_label(const char *in, char *out, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; in[i] != '\0' && j + 1 < len; i++) {
        char c = in[i];
        out[j++] = (c == '"' || c == '\\' || c == '<' || c == '>' || c == '[' || c == ']' ||
                    c == '{' || c == '}' || c == '|' || c == '\n')
                       ? '\''
                       : c;
    }
    out[j] = '\0';
}

static void node_label(const json_t *o, char *out, size_t len)
{
    size_t i;
    json_t *v;
    char sans[512] = "";
    size_t used = 0;
    json_array_foreach(json_object_get(o, "sans"), i, v)
    {
        int n = snprintf(sans + used, sizeof(sans) - used, "%s%s", i ? ", " : "",
                         json_string_value(v));
        if (n < 0 || (size_t)n >= sizeof(sans) - used)
            break;
        used += (size_t)n;
    }
    int valid = strcmp(str(o, "status"), "valid") == 0;
    snprintf(out, len, "%s (%s%s%s)", str(o, "name"), str(o, "key_algorithm"), valid ? "" : ", ",
             valid ? "" : str(o, "status"));
    if (sans[0] != '\0') {
        size_t l = strlen(out);
        snprintf(out + l, len - l, " %s", sans);
    }
}

static void tree_text(const json_t *items, const char *serial, const char *prefix, int depth)
{
    size_t i, n = 0, k = 0;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        if (strcmp(str(o, "issuer_serial"), serial) == 0 && strcmp(str(o, "serial"), serial) != 0)
            n++;
    }
    json_array_foreach(items, i, o)
    {
        if (strcmp(str(o, "issuer_serial"), serial) != 0 || strcmp(str(o, "serial"), serial) == 0)
            continue;
        int last = ++k == n;
        char label[1024], next[512];
        node_label(o, label, sizeof(label));
        printf("%s%s%s\n", prefix, last ? "└── " : "├── ", label);
        snprintf(next, sizeof(next), "%s%s", prefix, last ? "    " : "│   ");
        if (depth < 8)
            tree_text(items, str(o, "serial"), next, depth + 1);
    }
}

static int tree_print(const json_t *items, enum tree_format f)
{
    size_t i;
    json_t *o;
    char label[1024], safe[1024];
    if (f == TREE_MERMAID)
        printf("graph TD\n");
    else if (f == TREE_DOT)
        printf("digraph pki {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    json_array_foreach(items, i, o)
    {
        const char *serial = str(o, "serial"), *issuer = str(o, "issuer_serial");
        int is_root = strcmp(serial, issuer) == 0;
        node_label(o, label, sizeof(label));
        safe_label(label, safe, sizeof(safe));
        switch (f) {
        case TREE_MERMAID:
            printf("  n%s[\"%s\"]\n", serial, safe);
            if (!is_root)
                printf("  n%s --> n%s\n", issuer, serial);
            break;
        case TREE_DOT:
            printf("  \"%s\" [label=\"%s\"];\n", serial, safe);
            if (!is_root)
                printf("  \"%s\" -> \"%s\";\n", issuer, serial);
            break;
        case TREE_TEXT:
        default:
            if (is_root) {
                printf("%s\n", label);
                tree_text(items, serial, "", 0);
            }
            break;
        }
    }
    if (f == TREE_DOT)
        printf("}\n");
    return EXIT_OK;
}

int cmd_pki_tree(int argc, char **argv)
{
    static const char *const CMD = "pki tree";
    struct query_args a = {0};
    int rc = parse(CMD, argc, argv, "format", &a);
    if (a.help) {
        printf("Usage: pqmtls pki tree --pki DIR [--format text|mermaid|dot]\n\n"
               "Shows the hierarchy: root CA, intermediates, and what each issued, with key\n"
               "algorithm and names. 'mermaid' and 'dot' draw it as a diagram, e.g.\n"
               "  pqmtls pki tree --pki ./pki --format dot | dot -Tpng > pki.png\n");
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    enum tree_format f = TREE_TEXT;
    if (a.format == NULL || strcmp(a.format, "text") == 0)
        f = TREE_TEXT;
    else if (strcmp(a.format, "mermaid") == 0)
        f = TREE_MERMAID;
    else if (strcmp(a.format, "dot") == 0)
        f = TREE_DOT;
    else
        return cli_usage(CMD, "--format '%s': text, mermaid or dot", a.format);
    struct pqm_pki *pki = cli_pki_open(CMD, a.pki);
    if (pki == NULL)
        return EXIT_FAIL;
    struct record_list list;
    if (records_load(pki, &list) != 0) {
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
    } else {
        rc = tree_print(list.items, f);
        json_decref(list.items);
    }
    pqm_pki_free(pki);
    return rc;
}

/* --- check ------------------------------------------------------------------------ */

static void report(const char *line, void *arg)
{
    json_t *list = arg;
    if (list != NULL)
        json_array_append_new(list, json_string(line));
    else
        printf("problem: %s\n", line);
}

int cmd_pki_check(int argc, char **argv)
{
    static const char *const CMD = "pki check";
    struct query_args a = {0};
    int rc = parse(CMD, argc, argv, "json", &a);
    if (a.help) {
        printf("Usage: pqmtls pki check --pki DIR [--json]\n\n"
               "Finishes the recovery of any interrupted command (its half-written output is\n"
               "removed and its serial retired), then compares the inventory with the files:\n"
               "every recorded certificate present and matching its SHA-256 fingerprint, keys\n"
               "present and private (no group/other access), no unrecorded certificate in\n"
               "DIR/issued. Exit status 1 when anything differs.\n");
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    struct pqm_pki *pki = cli_pki_open(CMD, a.pki);
    if (pki == NULL)
        return EXIT_FAIL;
    json_t *list = a.json ? json_array() : NULL;
    int problems = pqm_pki_check(pki, report, list);
    if (problems < 0) {
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
    } else {
        if (list != NULL) {
            json_t *doc = json_pack("{s:b, s:O}", "consistent", problems == 0, "problems", list);
            json_dumpf(doc, stdout, JSON_INDENT(2));
            putchar('\n');
            json_decref(doc);
        } else if (problems == 0) {
            printf("%s: the inventory and the files agree\n", a.pki);
        }
        rc = problems == 0 ? EXIT_OK : EXIT_FAIL;
        if (problems > 0 && list == NULL)
            fprintf(stderr, "pqmtls %s: %s: %d problem(s)\n", CMD, a.pki, problems);
    }
    json_decref(list);
    pqm_pki_free(pki);
    return rc;
}
