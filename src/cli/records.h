/* The inventory as the commands show it. */
#ifndef PQM_CLI_RECORDS_H
#define PQM_CLI_RECORDS_H

#include <jansson.h>
#include <pqmtls/pki.h>

enum records_mode {
    RECORDS_TABLE,   /* pki list */
    RECORDS_JSON,    /* --json */
    RECORDS_CREATED, /* after pki init */
};

/* Seconds since the epoch as "2026-11-26T18:00:00Z". */
void records_iso(int64_t t, char *out, size_t len);
json_t *record_json(const struct pqm_cert_record *r);
/* Prints the inventory of PKI; ALL includes aborted issuances. */
int records_print(struct pqm_pki *pki, const char *dir, enum records_mode mode, int all);

/* A copy of the inventory, for commands that need it whole (tree). */
struct record_list {
    json_t *items; /* array of record_json() objects */
};
int records_load(struct pqm_pki *pki, struct record_list *out);

#endif
