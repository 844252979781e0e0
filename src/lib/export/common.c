/* What the exports share (see export/common.h). */
#include "export/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "pki/keyfile.h"
#include "pki/pki_internal.h"
#include "util/fsutil.h"

struct server_search {
    const char *kind;          /* "server" or "client" */
    const char *want;          /* NULL: any */
    struct pqm_export_server *out;
    size_t found;
    char names[512];           /* the names seen, for a refusal */
};

static int match_server(const struct pqm_cert_record *r, void *arg)
{
    struct server_search *s = arg;
    if (strcmp(r->kind, s->kind) != 0 || strcmp(r->status, "valid") != 0 ||
        (s->want != NULL && strcmp(r->name, s->want) != 0))
        return 0;
    size_t used = strlen(s->names);
    snprintf(s->names + used, sizeof(s->names) - used, "%s%s", used ? ", " : "", r->name);
    if (s->found++ > 0)
        return 0;
    snprintf(s->out->name, sizeof(s->out->name), "%s", r->name);
    snprintf(s->out->chain, sizeof(s->out->chain), "%s", r->chain_path);
    snprintf(s->out->key, sizeof(s->out->key), "%s", r->key_path);
    return 0;
}

int pqm__export_identity(struct pqm_pki *p, const char *kind, const char *name,
                         struct pqm_export_server *out)
{
    struct pqm_err *e = &p->err;
    struct server_search s = {kind, name, out, 0, ""};
    char chain[PATH_MAX], key[PATH_MAX];
    if (pqm_pki_foreach(p, 0, match_server, &s) != 0)
        return -1;
    if (s.found == 0 && name != NULL)
        return pqm__err_set(e, "no valid %s certificate named '%s' in %s (pqmtls pki issue "
                               "%s --name %s)",
                            kind, name, p->dir, kind, name);
    if (s.found == 0)
        return pqm__err_set(e, "the PKI %s has no valid %s certificate (pqmtls pki issue "
                               "%s --name NAME)",
                            p->dir, kind, kind);
    if (s.found > 1 && name == NULL)
        return pqm__err_set(e, "the PKI has %zu valid %s certificates (%s): name one with "
                               "--name",
                            s.found, kind, s.names);
    if (pqm__pki_path(p, out->chain, chain, sizeof(chain)) != 0 ||
        pqm__pki_path(p, out->key, key, sizeof(key)) != 0)
        return pqm__err_set(e, "path too long");
    memcpy(out->chain, chain, sizeof(chain));
    memcpy(out->key, key, sizeof(key));
    int enc = pqm__key_file_is_encrypted(out->key, e);
    if (enc < 0)
        return -1;
    out->encrypted = enc;
    return 0;
}

int pqm__export_server(struct pqm_pki *p, const char *name, struct pqm_export_server *out)
{
    return pqm__export_identity(p, "server", name, out);
}

int pqm__export_crl_chain(struct pqm_pki *p, const char *who, char *out, size_t outlen)
{
    struct stat st;
    if (pqm__pki_path(p, PQM_D_CRL "/client-ca-chain.crl.pem", out, outlen) != 0)
        return pqm__err_set(&p->err, "path too long");
    if (stat(out, &st) != 0)
        return pqm__err_set(&p->err, "%s: %s: %s needs the CRLs; run `pqmtls pki crl --pki %s` "
                                     "first",
                            out, strerror(errno), who, p->dir);
    return 0;
}

int pqm__k8s_label_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63 || name[0] == '-' || name[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-'))
            return 0;
    return 1;
}

int pqm__yaml_scalar(struct pqm_buf *b, const char *v)
{
    return pqm__yaml_scalarn(b, v, strlen(v));
}

int pqm__yaml_scalarn(struct pqm_buf *b, const void *v, size_t len)
{
    json_t *j = json_stringn(v, len);
    char *q = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    int rc = q != NULL ? pqm__buf_addf(b, "%s", q) : -1;
    free(q);
    json_decref(j);
    return rc;
}

int pqm__yaml_b64_field(struct pqm_buf *b, const char *name, const void *data, size_t len)
{
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return -1;
    size_t cap = 4 * ((len + 2) / 3) + 1;
    unsigned char *out = malloc(cap);
    if (out == NULL)
        return -1;
    int n = EVP_EncodeBlock(out, (const unsigned char *)data, (int)len);
    int rc = n >= 0 ? pqm__buf_addf(b, "  %s: %.*s\n", name, n, (const char *)out) : -1;
    OPENSSL_cleanse(out, cap);
    free(out);
    return rc;
}

int pqm__export_emit(struct pqm_pki *p, const struct pqm_buf *b, const char *out_file,
                     mode_t mode, char **text)
{
    if (out_file != NULL)
        return pqm__write_file_atomic(out_file, pqm__buf_head(b), b->len, mode, &p->err);
    if (text != NULL && (*text = strndup((const char *)pqm__buf_head(b), b->len)) == NULL)
        return pqm__err_set(&p->err, "out of memory");
    return 0;
}

void pqm__yaml_comment_text(const char *in, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; in[i] != '\0' && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[j++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (outlen > 0)
        out[j] = '\0';
}
