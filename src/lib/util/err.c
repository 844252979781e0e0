#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

__attribute__((format(printf, 2, 0))) static void vformat(struct pqm_err *e, const char *fmt,
                                                              va_list ap)
{
    if (vsnprintf(e->msg, sizeof(e->msg), fmt, ap) < 0)
        snprintf(e->msg, sizeof(e->msg), "(error message could not be formatted)");
}

int pqm__err_set(struct pqm_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(e, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return -1;
}

/* The last error in the queue is usually the most specific one. */
static void append_ossl(struct pqm_err *e)
{
    unsigned long code, last = 0;
    const char *data = NULL, *last_data = NULL;
    int flags = 0, last_flags = 0;

    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        last = code;
        last_data = data;
        last_flags = flags;
    }
    if (last == 0)
        return;
    size_t used = strlen(e->msg);
    char reason[256];
    const char *r = ERR_reason_error_string(last);
    if (r == NULL) {
        snprintf(reason, sizeof(reason), "OpenSSL error %lx", last);
        r = reason;
    }
    if ((last_flags & ERR_TXT_STRING) && last_data != NULL && last_data[0] != '\0')
        snprintf(e->msg + used, sizeof(e->msg) - used, ": %s (%s)", r, last_data);
    else
        snprintf(e->msg + used, sizeof(e->msg) - used, ": %s", r);
}

int pqm__err_ossl(struct pqm_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(e, fmt, ap);
    va_end(ap);
    append_ossl(e);
    return -1;
}

int pqm__err_copy(struct pqm_err *dst, const char *prefix, const char *src)
{
    char copy[PQM_ERR_MAX]; /* SRC may be DST's own message */
    snprintf(copy, sizeof(copy), "%s", src);
    if (prefix != NULL)
        snprintf(dst->msg, sizeof(dst->msg), "%s: %s", prefix, copy);
    else
        snprintf(dst->msg, sizeof(dst->msg), "%s", copy);
    return -1;
}

void pqm__err_clear(struct pqm_err *e)
{
    e->msg[0] = '\0';
}

const char *pqm__err_str(const struct pqm_err *e)
{
    return e->msg[0] != '\0' ? e->msg : "no error";
}
