/* What the exports share: finding the server identity and the CRLs in the PKI, and
 * writing YAML for Kubernetes safely. */
#ifndef PQM_EXPORT_COMMON_H
#define PQM_EXPORT_COMMON_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include <pqmtls/pki.h>

#include "util/buf.h"

/* The largest PKI file an export copies. */
#define PQM_EXPORT_FILE_MAX (16 * 1024 * 1024)

/* A server certificate of the PKI: its name and files (absolute paths). */
struct pqm_export_server {
    char name[256];
    char chain[PATH_MAX], key[PATH_MAX];
    int encrypted; /* its key is an encrypted PKCS#8 */
};

/* The valid server certificate named NAME; with NAME NULL, the PKI's only one (refused,
 * with the names, when there are several). */
int pqm__export_server(struct pqm_pki *p, const char *name, struct pqm_export_server *out);
/* The same for a KIND ("server" or "client") certificate. */
int pqm__export_identity(struct pqm_pki *p, const char *kind, const char *name,
                         struct pqm_export_server *out);
/* DIR/crl/client-ca-chain.crl.pem (the client intermediate's and the root's CRLs) into
 * OUT, refused when `pqmtls pki crl` has not written it yet; WHO names the reader that
 * needs it ("nginx's ssl_crl"). */
int pqm__export_crl_chain(struct pqm_pki *p, const char *who, char *out, size_t outlen);

/* 1 when NAME is an RFC 1123 label (a-z, 0-9, '-', at most 63), as Kubernetes requires
 * of a namespace. */
int pqm__k8s_label_ok(const char *name);
/* A YAML scalar: V's JSON string form (jansson), which YAML reads as the same string.
 * The N form takes LEN bytes of UTF-8 (a file's text); -1 for anything else. */
int pqm__yaml_scalar(struct pqm_buf *b, const char *v);
int pqm__yaml_scalarn(struct pqm_buf *b, const void *v, size_t len);
/* IN for a YAML '#' comment: control characters (a newline would end the comment and
 * start YAML) become '?'. */
void pqm__yaml_comment_text(const char *in, char *out, size_t outlen);
/* "  NAME: BASE64\n", a Secret's data field. */
int pqm__yaml_b64_field(struct pqm_buf *b, const char *name, const void *data, size_t len);

/* B's text to OUT_FILE (replaced atomically, MODE) or, without one, a malloc'd copy in
 * *TEXT (may be NULL then). */
int pqm__export_emit(struct pqm_pki *p, const struct pqm_buf *b, const char *out_file,
                     mode_t mode, char **text);

#endif
