#include "util/secret.h"

#include <string.h>

#include <openssl/crypto.h>

int pqm__secret_set(struct pqm_secret *s, const char *v, size_t len, struct pqm_err *e)
{
    if (len == 0)
        return pqm__err_set(e, "the passphrase is empty");
    if (len > PQM_PASS_MAX)
        return pqm__err_set(e, "the passphrase is longer than %d bytes", PQM_PASS_MAX);
    char *buf = OPENSSL_malloc(len + 1);
    if (buf == NULL)
        return pqm__err_set(e, "out of memory");
    memcpy(buf, v, len);
    buf[len] = '\0';
    pqm__secret_clear(s);
    s->buf = buf;
    s->len = len;
    return 0;
}

void pqm__secret_clear(struct pqm_secret *s)
{
    if (s->buf != NULL)
        OPENSSL_clear_free(s->buf, s->len + 1);
    s->buf = NULL;
    s->len = 0;
}
