/* libFuzzer target: the parsers of names that come from users and CSRs: DNS names,
 * SPIFFE IDs, IP addresses and ranges, and the name-constraint check over them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki/names.h"

static NAME_CONSTRAINTS *constraints(void)
{
    static NAME_CONSTRAINTS *nc;
    if (nc != NULL)
        return nc;
    struct pqm_err e;
    nc = NAME_CONSTRAINTS_new();
    const char *dns[] = {"example.com", ".example.org"};
    for (int i = 0; i < 2; i++) {
        GENERAL_SUBTREE *s = GENERAL_SUBTREE_new();
        GENERAL_NAME_free(s->base);
        s->base = pqm__gn_dns_subtree(dns[i], &e);
        if (nc->permittedSubtrees == NULL)
            nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
        sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, s);
    }
    GENERAL_SUBTREE *s = GENERAL_SUBTREE_new();
    GENERAL_NAME_free(s->base);
    s->base = pqm__gn_ip_range("127.0.0.0/8", &e);
    sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, s);
    s = GENERAL_SUBTREE_new();
    GENERAL_NAME_free(s->base);
    s->base = pqm__gn_uri("cluster.local", &e);
    sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, s);
    return nc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct pqm_err e;
    char td[256], text[PQM_GN_TEXT_MAX];
    unsigned char ip[16], mask[16];

    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn;
    if ((gn = pqm__gn_dns(s, &e)) != NULL)
        sk_GENERAL_NAME_push(gens, gn);
    if ((gn = pqm__gn_ip(s, &e)) != NULL)
        sk_GENERAL_NAME_push(gens, gn);
    if (pqm__spiffe_parse(s, td, sizeof(td), &e) == 0 && (gn = pqm__gn_uri(s, &e)) != NULL)
        sk_GENERAL_NAME_push(gens, gn);
    if ((gn = pqm__gn_ip_range(s, &e)) != NULL)
        GENERAL_NAME_free(gn);
    (void)pqm__cidr_parse(s, ip, mask);
    (void)pqm__spiffe_td_valid(s, &e);
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
        pqm__gn_format(sk_GENERAL_NAME_value(gens, i), text, sizeof(text));
    (void)pqm__nc_precheck(constraints(), gens, "fuzz CA", &e);
    GENERAL_NAMES_free(gens);
    free(s);
    return 0;
}
