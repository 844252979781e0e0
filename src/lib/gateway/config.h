/* The gateway's settings: one table of options serves flags, the configuration file and
 * --help alike. */
#ifndef PQM_GATEWAY_CONFIG_H
#define PQM_GATEWAY_CONFIG_H

#include <stddef.h>

#include <pqmtls/gateway.h>

#include "util/err.h"
#include "util/secret.h"
#include "util/strlist.h"

struct pqm_policy;

#define PQM_GW_MAX_CRLS 16

struct pqm_gateway_config {
    struct pqm_err err;
    char listen[256];
    char upstream[256];
    char admin[256]; /* "" : no admin listener */
    char metrics[256]; /* "" : /metrics on the admin listener only */
    char cert[4096], key[4096], client_ca[4096];
    char key_passphrase_file[4096];
    char crl[PQM_GW_MAX_CRLS][4096];
    size_t ncrl;
    char access_log[4096]; /* "-" stdout, "off", or a file */
    char client_ocsp[8];       /* off, soft, hard */
    char ocsp_stapling[8];     /* auto, on, off */
    char ocsp_responder[512];  /* "" : each certificate's own */
    double ocsp_timeout;
    int ocsp_cache_seconds;
    int verify_depth;
    int require_pq, crl_soft_fail;
    int client_cert_header; /* RFC 9440 Client-Cert to the upstream */
    int expiry_warning_days;
    int session_tickets, ticket_key_lifetime;
    int verify_cache; /* remember verified client leaves (tls/trust.h) */
    int workers;           /* 0: one per core */
    int max_connections;   /* per worker */
    int max_header_size;   /* bytes of a request head */
    int upstream_keepalive; /* idle upstream connections kept per worker */
    double handshake_timeout, header_timeout, idle_timeout;
    double upstream_connect_timeout, upstream_timeout, drain_timeout;
    double watch_interval; /* 0: files are read again on SIGHUP only */
    struct pqm_policy *policy; /* allow and deny rules; NULL when none (owned) */
    /* What made this configuration, in order ("F:file" loaded, "S:key=value" set), so
     * that a reload can make it again from the files as they are now. */
    struct pqm_strlist ops;
};

/* A new configuration made by replaying C's steps (the files read again); NULL with
 * the reason in E. */
struct pqm_gateway_config *pqm__gw_config_replay(const struct pqm_strlist *ops,
                                                 struct pqm_err *e);
/* 1 when the configuration came (partly) from a file. */
int pqm__gw_config_has_file(const struct pqm_strlist *ops);

#endif
