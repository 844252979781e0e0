/*
 * pqmtls exports: the configuration other tools need to enforce the same PKI (nginx,
 * Istio, Kubernetes), written from the PKI itself so that they never drift from it.
 */
#ifndef PQMTLS_EXPORT_H
#define PQMTLS_EXPORT_H

#include <pqmtls/common.h>
#include <pqmtls/pki.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An nginx mTLS reverse proxy in front of one upstream. */
struct pqm_nginx_export {
    const char *server_name;   /* a valid server certificate of the PKI with this name */
    const char *upstream;      /* "http://backend:8080" */
    const char *ssl_dir;       /* where the files will be on the nginx host (default
                                  /etc/nginx/ssl); the configuration names them there */
    const char *out_dir;       /* where to write: OUT/NAME.conf and OUT/ssl/ (created) */
    const char *key_passphrase_file; /* copied for ssl_password_file when the key is
                                        encrypted (required then) */
    int listen_port;           /* default 443 */
    const char *upstream_ca;   /* with an https:// upstream: the CA file on the nginx host
                                  that verifies it (default Debian's system bundle,
                                  /etc/ssl/certs/ca-certificates.crt) */
};

/* Writes OUT/<server_name>.conf (an http-context server block: TLS 1.3, X25519MLKEM768
 * first, the client CA chain, ssl_verify_client on, depth 2, the client chain's CRLs,
 * OCSP stapling when the server certificate names a responder, the X-Client-Cert-*
 * headers with any incoming copy cleared) and copies the files it refers to into
 * OUT/ssl/ (keys and passphrases mode 0600, the rest 0644). Needs the CRLs that
 * `pqm_pki_gen_crls` writes. Each file is replaced atomically. */
PQM_API int pqm_pki_export_nginx(struct pqm_pki *pki, const struct pqm_nginx_export *x);

/* Istio mutual TLS for one namespace. */
struct pqm_istio_export {
    const char *namespace_;   /* "production" */
    const char *policy_file;  /* a gateway configuration (YAML) whose allow, deny and
                                 allow_spiffe rules become the AuthorizationPolicies; NULL:
                                 allow every SPIFFE ID of a valid client certificate */
    const char *out_file;     /* NULL: the text is returned in *TEXT */
};

/* One multi-document YAML: PeerAuthentication "default" (mtls STRICT), DestinationRule
 * "default-mtls" (*.NS.svc.cluster.local, ISTIO_MUTUAL) and AuthorizationPolicy
 * "pqmtls-allow" (and "pqmtls-deny" for deny rules), principals in Istio's form (the
 * SPIFFE ID without "spiffe://"). TEXT (may be NULL when OUT_FILE is set) receives a
 * malloc'd copy when OUT_FILE is NULL. */
PQM_API int pqm_pki_export_istio(struct pqm_pki *pki, const struct pqm_istio_export *x,
                                 char **text);

/* The Kubernetes Secret "cacerts" in istio-system (ca-cert.pem, ca-key.pem unencrypted,
 * root-cert.pem, cert-chain.pem) for Istio's plug-in CA, from the PKI's mesh hierarchy
 * (pqm_pki_create_mesh): Istio's proxies cannot verify ML-DSA, so the post-quantum CAs
 * are never put there. Refuses, saying why, when there is no mesh hierarchy or when
 * anything Istio checks would fail (key type, key/certificate match, chain, validity).
 * Needs the PKI passphrase when the PKI is encrypted. OUT_FILE is written mode 0600;
 * without it the text goes to *TEXT. */
PQM_API int pqm_pki_export_istio_cacerts(struct pqm_pki *pki, const char *out_file, char **text);

/* The pqmtls gateway on Kubernetes. */
struct pqm_k8s_export {
    const char *namespace_;    /* default "pqmtls" */
    const char *name;          /* the server certificate (a valid one of the PKI); NULL:
                                  the PKI's only valid server certificate */
    const char *upstream;      /* HOST:PORT the gateway forwards to (default backend:8080,
                                  a Service "backend" in the namespace) */
    const char *image;         /* default "pqmtls-gateway:<version>" (deploy/Containerfile) */
    int replicas;              /* default 2 */
    const char *service_type;  /* "ClusterIP" (default) or "LoadBalancer" */
    int create_namespace;      /* also a Namespace that enforces Pod Security "restricted" */
    const char *policy_file;   /* a gateway configuration (YAML) whose allow, deny and
                                  allow_spiffe rules go into gateway.yaml; NULL: none */
    const char *key_passphrase_file; /* required when the server key is encrypted: its first
                                        line goes into the Secret (checked against the key) */
    const char *out_file;      /* written mode 0600 (it holds the key); NULL: *TEXT */
    const char *const *clients; /* names of valid client certificates (unencrypted keys):
                                   a Secret pqmtls-client-NAME each, for workloads that
                                   call the gateway; at most PQM_K8S_CLIENTS_MAX */
    size_t nclients;
};
#define PQM_K8S_CLIENTS_MAX 64

/* One multi-document YAML: a Secret (kubernetes.io/tls: the server chain, its key, the
 * client CA chain as ca.crt, and key.pass when the key is encrypted), a ConfigMap
 * (gateway.yaml and the client CA chain's CRLs, which `pqm_pki_gen_crls` writes), a
 * Deployment (non-root, read-only root file system, no capabilities, RuntimeDefault
 * seccomp, resources, exec probes of the loopback admin listener, both objects in one
 * projected volume at /etc/pqmtls), a Service (443 to 8443) and a PodDisruptionBudget.
 * gateway.yaml is checked by the gateway's own option parser before it is written. With
 * clients, a kubernetes.io/tls Secret per client identity follows: tls.crt (its chain),
 * tls.key, ca.crt (server-ca-chain.pem, what a client trusts to reach the gateway). */
PQM_API int pqm_pki_export_k8s(struct pqm_pki *pki, const struct pqm_k8s_export *x, char **text);

#ifdef __cplusplus
}
#endif
#endif
