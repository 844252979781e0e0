#include "pki/names.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int pqm__dns_valid(const char *name, struct pqm_err *e)
{
    size_t len = strlen(name);
    if (len == 0 || len > PQM_DNS_MAX)
        return pqm__err_set(e, "DNS name '%.64s' must be 1 to %d characters", name, PQM_DNS_MAX);
    const char *p = name;
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    if (*p == '\0')
        return pqm__err_set(e, "DNS name '%s' has no label after the wildcard", name);
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t lab = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (lab == 0 || lab > 63)
            return pqm__err_set(e, "DNS name '%s': labels must be 1 to 63 characters", name);
        if (p[0] == '-' || p[lab - 1] == '-')
            return pqm__err_set(e, "DNS name '%s': a label cannot start or end with '-'", name);
        for (size_t i = 0; i < lab; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '-')
                return pqm__err_set(e, "DNS name '%s': invalid character '%c'", name, p[i]);
        if (dot == NULL) {
            /* A top-level label is never all digits: "10.1.2.3" is an address, and as a
             * DNS SAN it would slip past the IP constraints (RFC 3696 2). */
            if (strspn(p, "0123456789") == lab)
                return pqm__err_set(e, "'%s' is an IP address, not a DNS name (use --ip)", name);
            break;
        }
        p = dot + 1;
        if (*p == '\0')
            return pqm__err_set(e, "DNS name '%s' must not end with '.'", name);
    }
    return 0;
}

int pqm__spiffe_td_valid(const char *td, struct pqm_err *e)
{
    size_t len = strlen(td);
    if (len == 0 || len > 255)
        return pqm__err_set(e, "SPIFFE trust domain '%.64s' must be 1 to 255 characters", td);
    for (size_t i = 0; i < len; i++) {
        char c = td[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '.' || c == '-' ||
              c == '_'))
            return pqm__err_set(e,
                                "SPIFFE trust domain '%s': invalid character '%c' (only a-z, 0-9, "
                                "'.', '-', '_')",
                                td, c);
    }
    return 0;
}

static int spiffe_segment_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

int pqm__spiffe_parse(const char *uri, char *td, size_t tdlen, struct pqm_err *e)
{
    static const char scheme[] = "spiffe://";
    size_t len = strlen(uri);
    if (len > PQM_SPIFFE_MAX)
        return pqm__err_set(e, "SPIFFE ID longer than %d characters", PQM_SPIFFE_MAX);
    if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
        return pqm__err_set(e, "SPIFFE ID '%s' must start with 'spiffe://'", uri);
    const char *host = uri + sizeof(scheme) - 1;
    const char *slash = strchr(host, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - host) : strlen(host);
    if (hlen == 0)
        return pqm__err_set(e, "SPIFFE ID '%s' has no trust domain", uri);
    if (hlen >= tdlen)
        return pqm__err_set(e, "SPIFFE ID '%s': trust domain too long", uri);
    memcpy(td, host, hlen);
    td[hlen] = '\0';
    if (pqm__spiffe_td_valid(td, e) != 0)
        return pqm__err_set(e, "SPIFFE ID '%s': trust domain '%s' may contain only a-z, 0-9, "
                               "'.', '-', '_' (no port, no user info)",
                            uri, td);
    if (slash == NULL || slash[1] == '\0')
        return pqm__err_set(e, "SPIFFE ID '%s' has no workload path (spiffe://%s/...)", uri, td);
    for (const char *p = slash + 1;;) {
        const char *next = strchr(p, '/');
        size_t seg = next != NULL ? (size_t)(next - p) : strlen(p);
        if (seg == 0)
            return pqm__err_set(e, "SPIFFE ID '%s': empty path segment", uri);
        if ((seg == 1 && p[0] == '.') || (seg == 2 && p[0] == '.' && p[1] == '.'))
            return pqm__err_set(e, "SPIFFE ID '%s': '.' and '..' segments are not allowed", uri);
        for (size_t i = 0; i < seg; i++)
            if (!spiffe_segment_char(p[i]))
                return pqm__err_set(e,
                                    "SPIFFE ID '%s': invalid character '%c' in the path (only "
                                    "A-Z, a-z, 0-9, '.', '-', '_')",
                                    uri, p[i]);
        if (next == NULL)
            break;
        p = next + 1;
    }
    return 0;
}

int pqm__ip_parse(const char *text, unsigned char out[16])
{
    if (inet_pton(AF_INET, text, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, text, out) == 1)
        return 16;
    return -1;
}

int pqm__cidr_parse(const char *text, unsigned char addr[16], unsigned char mask[16])
{
    char buf[64];
    const char *slash = strchr(text, '/');
    if (slash == NULL || (size_t)(slash - text) >= sizeof(buf))
        return -1;
    memcpy(buf, text, (size_t)(slash - text));
    buf[slash - text] = '\0';
    int alen = pqm__ip_parse(buf, addr);
    if (alen < 0)
        return -1;
    if (!isdigit((unsigned char)slash[1]))
        return -1; /* strtol would take spaces and a sign */
    char *end = NULL;
    long prefix = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end != '\0' || prefix < 0 || prefix > alen * 8)
        return -1;
    for (int i = 0; i < alen; i++) {
        long bits = prefix - i * 8;
        mask[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits));
        if ((addr[i] & ~mask[i]) != 0)
            return -1; /* host bits set: almost certainly a mistake */
    }
    return alen;
}

static GENERAL_NAME *gn_ia5(int type, const char *value, struct pqm_err *e)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (gn == NULL || s == NULL || ASN1_STRING_set(s, value, (int)strlen(value)) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(s);
        pqm__err_ossl(e, "out of memory");
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, type, s);
    return gn;
}

static GENERAL_NAME *gn_octets(const unsigned char *data, int len, struct pqm_err *e)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
    if (gn == NULL || s == NULL || ASN1_OCTET_STRING_set(s, data, len) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_OCTET_STRING_free(s);
        pqm__err_ossl(e, "out of memory");
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, s);
    return gn;
}

GENERAL_NAME *pqm__gn_dns(const char *dns, struct pqm_err *e)
{
    if (pqm__dns_valid(dns, e) != 0)
        return NULL;
    return gn_ia5(GEN_DNS, dns, e);
}

GENERAL_NAME *pqm__gn_ip(const char *ip, struct pqm_err *e)
{
    unsigned char buf[16];
    int len = pqm__ip_parse(ip, buf);
    if (len < 0) {
        pqm__err_set(e, "'%s' is not an IPv4 or IPv6 address", ip);
        return NULL;
    }
    return gn_octets(buf, len, e);
}

GENERAL_NAME *pqm__gn_dns_subtree(const char *domain, struct pqm_err *e)
{
    /* RFC 5280 4.2.1.10: "example.com" is the domain and everything below it,
     * ".example.com" only what is below it. Both are kept as given. */
    const char *host = domain[0] == '.' ? domain + 1 : domain;
    if (domain[0] == '*' || pqm__dns_valid(host, e) != 0)
        return NULL;
    return gn_ia5(GEN_DNS, domain, e);
}

GENERAL_NAME *pqm__gn_uri(const char *uri, struct pqm_err *e)
{
    return gn_ia5(GEN_URI, uri, e);
}

GENERAL_NAME *pqm__gn_ip_range(const char *cidr, struct pqm_err *e)
{
    unsigned char addr[16], mask[16], buf[32];
    int len = pqm__cidr_parse(cidr, addr, mask);
    if (len < 0) {
        pqm__err_set(e, "'%s' is not an IP range (ADDRESS/PREFIX, no host bits set)", cidr);
        return NULL;
    }
    memcpy(buf, addr, (size_t)len);
    memcpy(buf + len, mask, (size_t)len);
    return gn_octets(buf, len * 2, e);
}

static int mask_prefix(const unsigned char *mask, int len)
{
    int bits = 0;
    for (int i = 0; i < len; i++)
        for (int b = 7; b >= 0; b--)
            bits += (mask[i] >> b) & 1;
    return bits;
}

void pqm__gn_format(const GENERAL_NAME *gn, char *out, size_t outlen)
{
    int type;
    const void *v = GENERAL_NAME_get0_value(gn, &type);
    const ASN1_STRING *s = v;
    char ip[INET6_ADDRSTRLEN];
    switch (type) {
    case GEN_DNS:
        snprintf(out, outlen, "DNS:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
        return;
    case GEN_URI:
        snprintf(out, outlen, "URI:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
        return;
    case GEN_EMAIL:
        snprintf(out, outlen, "email:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
        return;
    case GEN_IPADD: {
        int len = ASN1_STRING_length(s);
        const unsigned char *d = ASN1_STRING_get0_data(s);
        int alen = (len == 8 || len == 32) ? len / 2 : len;
        if ((alen != 4 && alen != 16) ||
            inet_ntop(alen == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip)) == NULL) {
            snprintf(out, outlen, "IP:<%d bytes>", len);
            return;
        }
        if (alen != len)
            snprintf(out, outlen, "IP:%s/%d", ip, mask_prefix(d + alen, alen));
        else
            snprintf(out, outlen, "IP:%s", ip);
        return;
    }
    default:
        snprintf(out, outlen, "othername(type %d)", type);
        return;
    }
}

static int dns_match(const ASN1_STRING *base, const ASN1_STRING *name)
{
    size_t blen = (size_t)ASN1_STRING_length(base), nlen = (size_t)ASN1_STRING_length(name);
    const char *b = (const char *)ASN1_STRING_get0_data(base);
    const char *n = (const char *)ASN1_STRING_get0_data(name);
    if (blen == 0)
        return 1;
    if (nlen < blen || strncasecmp(n + nlen - blen, b, blen) != 0)
        return 0;
    /* RFC 5280 4.2.1.10: whole labels only; a leading '.' means subdomains only. */
    if (nlen == blen)
        return 1;
    return b[0] == '.' || n[nlen - blen - 1] == '.';
}

static int ip_match(const ASN1_STRING *base, const ASN1_STRING *name)
{
    int blen = ASN1_STRING_length(base), nlen = ASN1_STRING_length(name);
    const unsigned char *b = ASN1_STRING_get0_data(base), *n = ASN1_STRING_get0_data(name);
    if (blen != nlen * 2)
        return 0;
    for (int i = 0; i < nlen; i++)
        if ((n[i] & b[nlen + i]) != (b[i] & b[nlen + i]))
            return 0;
    return 1;
}

/* The host of a URI (RFC 3986 authority without user info and port). */
static size_t uri_host(const char *uri, size_t len, const char **host)
{
    const char *p = memchr(uri, ':', len);
    if (p == NULL || (size_t)(p - uri) + 3 > len || p[1] != '/' || p[2] != '/')
        return 0;
    p += 3;
    const char *end = uri + len, *q = p;
    while (q < end && *q != '/' && *q != '?' && *q != '#')
        q++;
    const char *at = memchr(p, '@', (size_t)(q - p));
    if (at != NULL)
        p = at + 1;
    const char *colon = memchr(p, ':', (size_t)(q - p));
    if (colon != NULL)
        q = colon;
    *host = p;
    return (size_t)(q - p);
}

static int uri_match(const ASN1_STRING *base, const ASN1_STRING *name)
{
    size_t blen = (size_t)ASN1_STRING_length(base);
    const char *b = (const char *)ASN1_STRING_get0_data(base);
    const char *host;
    size_t hlen = uri_host((const char *)ASN1_STRING_get0_data(name),
                           (size_t)ASN1_STRING_length(name), &host);
    if (hlen == 0)
        return 0;
    if (b[0] == '.')
        return hlen > blen && strncasecmp(host + hlen - blen, b, blen) == 0;
    return hlen == blen && strncasecmp(host, b, blen) == 0;
}

static int gn_match(const GENERAL_NAME *base, const GENERAL_NAME *name)
{
    int bt, nt;
    const ASN1_STRING *b = GENERAL_NAME_get0_value(base, &bt);
    const ASN1_STRING *n = GENERAL_NAME_get0_value(name, &nt);
    if (bt != nt)
        return 0;
    switch (nt) {
    case GEN_DNS:
        return dns_match(b, n);
    case GEN_IPADD:
        return ip_match(b, n);
    case GEN_URI:
        return uri_match(b, n);
    default:
        return 0;
    }
}

/* "DNS:a, DNS:b" of the subtrees of TYPE into OUT; returns how many there are. */
static int describe_subtrees(const STACK_OF(GENERAL_SUBTREE) *st, int type, char *out,
                             size_t outlen)
{
    int count = 0;
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(st); i++) {
        const GENERAL_SUBTREE *s = sk_GENERAL_SUBTREE_value(st, i);
        if (s->base->type != type)
            continue;
        char one[300];
        pqm__gn_format(s->base, one, sizeof(one));
        int n = snprintf(out + used, outlen - used, "%s%s", count ? ", " : "", one);
        if (n > 0 && (size_t)n < outlen - used)
            used += (size_t)n;
        count++;
    }
    return count;
}

static int in_subtrees(const STACK_OF(GENERAL_SUBTREE) *st, const GENERAL_NAME *name)
{
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(st); i++)
        if (gn_match(sk_GENERAL_SUBTREE_value(st, i)->base, name))
            return 1;
    return 0;
}

int pqm__nc_precheck(const NAME_CONSTRAINTS *nc, const GENERAL_NAMES *sans, const char *ca,
                     struct pqm_err *e)
{
    if (nc == NULL)
        return 0;
    char subtrees[700], nm[300];
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        pqm__gn_format(gn, nm, sizeof(nm));
        if (nc->excludedSubtrees != NULL && in_subtrees(nc->excludedSubtrees, gn)) {
            describe_subtrees(nc->excludedSubtrees, gn->type, subtrees, sizeof(subtrees));
            return pqm__err_set(e, "%s is excluded by the %s name constraints (excluded: %s)", nm,
                                ca, subtrees);
        }
        if (nc->permittedSubtrees == NULL)
            continue;
        int n = describe_subtrees(nc->permittedSubtrees, gn->type, subtrees, sizeof(subtrees));
        if (n > 0 && !in_subtrees(nc->permittedSubtrees, gn))
            return pqm__err_set(e, "%s is outside the %s name constraints (permitted: %s)", nm,
                                ca, subtrees);
    }
    return 0;
}

int pqm__url_valid(const char *url, const char *field, struct pqm_err *e)
{
    size_t len = strlen(url);
    if (len == 0 || len >= PQM_URL_MAX)
        return pqm__err_set(e, "%s must be 1 to %d bytes", field, PQM_URL_MAX - 1);
    const char *host = NULL;
    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else
        return pqm__err_set(e, "%s '%.80s' must start with http:// or https://", field, url);
    if (*host == '\0' || *host == '/' || *host == ':')
        return pqm__err_set(e, "%s '%.80s' has no host", field, url);
    for (const char *c = url; *c != '\0'; c++)
        if (*c <= ' ' || *c > '~' || *c == '#' || *c == '"' || *c == '<' || *c == '>' ||
            *c == '\\')
            return pqm__err_set(e, "%s '%.80s' contains a character not allowed in a URL "
                                   "(position %zu)",
                                field, url, (size_t)(c - url) + 1);
    return 0;
}
