#include "records.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

void records_iso(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, len, "%lld", (long long)t);
}

/* A JSON string, or a marker when the inventory holds bytes that are not UTF-8
 * (jansson refuses those), so that one odd row does not hide the others. */
static json_t *jstr(const char *v)
{
    json_t *j = json_string(v != NULL ? v : "");
    return j != NULL ? j : json_string("(not valid UTF-8)");
}

json_t *record_json(const struct pqm_cert_record *r)
{
    char nb[32], na[32];
    records_iso(r->not_before, nb, sizeof(nb));
    records_iso(r->not_after, na, sizeof(na));
    json_t *o = json_object(), *sans = json_array();
    if (o == NULL || sans == NULL) {
        json_decref(o);
        json_decref(sans);
        return NULL;
    }
    for (const char *p = r->sans; *p != '\0';) {
        size_t n = strcspn(p, ",");
        json_t *one = json_stringn(p, n);
        json_array_append_new(sans, one != NULL ? one : json_string("(not valid UTF-8)"));
        p += n;
        if (*p == ',')
            p++;
    }
    const struct {
        const char *key, *value;
    } fields[] = {
        {"name", r->name},         {"serial", r->serial},
        {"kind", r->kind},         {"profile", r->profile},
        {"status", r->status},     {"subject", r->subject},
        {"issuer", r->issuer},     {"key_algorithm", r->key_alg},
        {"sha256_fingerprint", r->fingerprint},
        {"not_before", nb},        {"not_after", na},
        {"issuer_serial", r->issuer_serial},
        {"cert_path", r->cert_path}, {"key_path", r->key_path},
        {"chain_path", r->chain_path}, {"p12_path", r->p12_path},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_object_set_new(o, fields[i].key, jstr(fields[i].value));
        if (i == 6)
            json_object_set_new(o, "sans", sans);
    }
    json_object_set_new(o, "not_after_epoch", json_integer((json_int_t)r->not_after));
    if (r->revoked_at > 0) {
        char ra[32];
        records_iso(r->revoked_at, ra, sizeof(ra));
        json_object_set_new(o, "revoked_at", jstr(ra));
        json_object_set_new(o, "revocation_reason", jstr(r->revocation_reason));
    }
    if (r->replaced_by != NULL && r->replaced_by[0] != '\0')
        json_object_set_new(o, "replaced_by", jstr(r->replaced_by));
    return o;
}

static int collect(const struct pqm_cert_record *r, void *arg)
{
    json_t *j = record_json(r);
    if (j == NULL)
        return -1;
    return json_array_append_new(arg, j) == 0 ? 0 : -1;
}

int records_load(struct pqm_pki *pki, struct record_list *out)
{
    out->items = json_array();
    if (out->items == NULL)
        return -1;
    if (pqm_pki_foreach(pki, 0, collect, out->items) != 0) {
        json_decref(out->items);
        out->items = NULL;
        return -1;
    }
    return 0;
}

static const char *s(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

static void sans_text(const json_t *o, char *out, size_t len)
{
    size_t used = 0, i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(json_object_get(o, "sans"), i, v)
    {
        int n = snprintf(out + used, len - used, "%s%s", i ? ", " : "", json_string_value(v));
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
}

int records_print(struct pqm_pki *pki, const char *dir, enum records_mode mode, int all)
{
    json_t *items = json_array();
    if (items == NULL || pqm_pki_foreach(pki, all, collect, items) != 0) {
        json_decref(items);
        fprintf(stderr, "pqmtls: %s: %s\n", dir,
                items == NULL ? "out of memory" : pqm_pki_error(pki));
        return -1;
    }
    size_t i;
    json_t *o;
    switch (mode) {
    case RECORDS_JSON: {
        json_t *doc = json_pack("{s:s, s:o}", "pki", dir, "certificates", items);
        if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            return -1;
        putchar('\n');
        json_decref(doc);
        return 0;
    }
    case RECORDS_CREATED:
        printf("Created the PKI in %s:\n", dir);
        json_array_foreach(items, i, o)
        {
            printf("  %-14s %-22s %s, serial %.16s..., valid until %s\n", s(o, "name"),
                   s(o, "cert_path"), s(o, "key_algorithm"), s(o, "serial"), s(o, "not_after"));
        }
        printf("Clients trust %s/server-ca-chain.pem; servers and gateways trust "
               "%s/client-ca-chain.pem.\n",
               dir, dir);
        break;
    case RECORDS_TABLE:
    default:
        printf("%-24s %-12s %-10s %-20s %-18s %s\n", "NAME", "KIND", "STATUS", "NOT AFTER",
               "SERIAL", "NAMES");
        json_array_foreach(items, i, o)
        {
            char sans[1024];
            sans_text(o, sans, sizeof(sans));
            printf("%-24s %-12s %-10s %-20s %-18.16s %s\n", s(o, "name"), s(o, "kind"),
                   s(o, "status"), s(o, "not_after"), s(o, "serial"),
                   sans[0] ? sans : s(o, "subject"));
        }
        break;
    }
    json_decref(items);
    return 0;
}
