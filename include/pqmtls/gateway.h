/*
 * pqmtls gateway: an mTLS-terminating reverse proxy. It requires and verifies client
 * certificates, forwards the client's identity to the upstream in headers, and speaks
 * TLS 1.3 with the X25519MLKEM768 hybrid group first.
 */
#ifndef PQMTLS_GATEWAY_H
#define PQMTLS_GATEWAY_H

#include <stddef.h>
#include <pqmtls/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pqm_gateway_config;
struct pqm_gateway;

/* A configuration with the secure defaults (TLS 1.3 only, client certificate required,
 * verify depth 2, one worker per core). */
PQM_API struct pqm_gateway_config *pqm_gateway_config_new(void);
PQM_API void pqm_gateway_config_free(struct pqm_gateway_config *cfg);
PQM_API const char *pqm_gateway_config_error(const struct pqm_gateway_config *cfg);
/* Sets option KEY (the names of docs/gateway.md, e.g. "listen", "client_ca") from its
 * text form; a list option ("crl") adds one value per call. -1 with the reason. */
PQM_API int pqm_gateway_config_set(struct pqm_gateway_config *cfg, const char *key,
                                   const char *value);
/* Reads options from a YAML file: a mapping of option names to values (a list of values
 * for a list option). An unknown key or a bad value is refused with "FILE:LINE: reason". */
PQM_API int pqm_gateway_config_load_file(struct pqm_gateway_config *cfg, const char *path);
/* 1 when KEY is a switch (true/false) option, 0 when it takes a value, -1 unknown. */
PQM_API int pqm_gateway_config_is_switch(const char *key);
/* Checks that the configuration is complete and coherent. */
PQM_API int pqm_gateway_config_check(struct pqm_gateway_config *cfg);
/* Calls FN for every option: its name, a value placeholder ("" for a switch) and its
 * description (for --help). */
PQM_API void pqm_gateway_config_describe(void (*fn)(const char *name, const char *arg,
                                                    const char *doc, void *ctx),
                                         void *ctx);

/* Loads certificates, keys, CAs and CRLs and binds the listeners. NULL on failure, with
 * the reason in ERR. The configuration is copied. */
PQM_API struct pqm_gateway *pqm_gateway_new(const struct pqm_gateway_config *cfg, char *err,
                                            size_t errlen);
/* Serves until SIGTERM or SIGINT (then drains the connections). Blocks those signals in
 * the calling thread's process for its duration. Returns 0, or -1 on a failure. */
PQM_API int pqm_gateway_run(struct pqm_gateway *gw);
PQM_API void pqm_gateway_free(struct pqm_gateway *gw);

/* A health probe: one GET of URL (http://HOST:PORT/PATH, plain HTTP, as the admin
 * listener's /healthz and /readyz), all of it within TIMEOUT seconds. For a prober that
 * cannot reach the loopback admin listener itself: a Kubernetes exec probe runs this
 * inside the pod's network namespace, so the listener stays on loopback. Returns 0 when
 * an HTTP answer came, with its status in *STATUS and the first line of its body in
 * DETAIL; -1 when none did (refused, timed out, not HTTP), with the reason in DETAIL. */
PQM_API int pqm_gateway_probe(const char *url, double timeout, int *status, char *detail,
                              size_t detaillen);

#ifdef __cplusplus
}
#endif
#endif
