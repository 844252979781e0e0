/* Names in certificates: DNS names, IP addresses and ranges, SPIFFE IDs, and the
 * name-constraint check that runs before anything is signed. */
#ifndef PQM_PKI_NAMES_H
#define PQM_PKI_NAMES_H

#include <stddef.h>
#include <openssl/x509v3.h>

#include "util/err.h"

#define PQM_SPIFFE_MAX 2048
#define PQM_DNS_MAX 253
/* Room for any one name as pqm__gn_format writes it. */
#define PQM_GN_TEXT_MAX (PQM_SPIFFE_MAX + 64)

/* A DNS host name (LDH labels, optionally "*." first). */
int pqm__dns_valid(const char *name, struct pqm_err *e);
/* A SPIFFE trust domain: [a-z0-9._-], at most 255 characters. */
int pqm__spiffe_td_valid(const char *td, struct pqm_err *e);
/* An http:// or https:// URL with a host, printable ASCII without spaces, at most
 * PQM_URL_MAX - 1 bytes, no fragment. FIELD names the option in errors. */
#define PQM_URL_MAX 512
int pqm__url_valid(const char *url, const char *field, struct pqm_err *e);
/* Validates a SPIFFE ID (spiffe://TD/PATH, per the SPIFFE ID specification) and
 * copies its trust domain into TD. */
int pqm__spiffe_parse(const char *uri, char *td, size_t tdlen, struct pqm_err *e);
/* IPv4 or IPv6 address into OUT (4 or 16 bytes); returns the length, -1 when invalid. */
int pqm__ip_parse(const char *text, unsigned char out[16]);
/* "addr/prefix" into address and mask; returns the address length (4/16), -1 when invalid. */
int pqm__cidr_parse(const char *text, unsigned char addr[16], unsigned char mask[16]);

/* GENERAL_NAME constructors (NULL on failure, with E set). */
GENERAL_NAME *pqm__gn_dns(const char *dns, struct pqm_err *e);
GENERAL_NAME *pqm__gn_ip(const char *ip, struct pqm_err *e);
GENERAL_NAME *pqm__gn_uri(const char *uri, struct pqm_err *e);
/* A dNSName subtree base: "example.com" (the domain and below) or ".example.com"
 * (below only). */
GENERAL_NAME *pqm__gn_dns_subtree(const char *domain, struct pqm_err *e);
/* An iPAddress subtree base: address followed by mask. */
GENERAL_NAME *pqm__gn_ip_range(const char *cidr, struct pqm_err *e);
/* "DNS:x", "IP:1.2.3.4", "URI:spiffe://..." into OUT. */
void pqm__gn_format(const GENERAL_NAME *gn, char *out, size_t outlen);

/* Refuses, naming the name and the constraint, any name in SANS that falls outside
 * NC's permitted subtrees (for the name types NC constrains) or inside an excluded
 * one. CA names the issuing CA in the message. */
int pqm__nc_precheck(const NAME_CONSTRAINTS *nc, const GENERAL_NAMES *sans, const char *ca,
                     struct pqm_err *e);

#endif
