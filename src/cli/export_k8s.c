/* pqmtls export k8s: the gateway's Kubernetes objects from the PKI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pqmtls/export.h>
#include <pqmtls/pqmtls.h>

#include "commands.h"
#include "common.h"

static const char *const CMD = "export k8s";

enum {
    K_PKI = 256,
    K_NAMESPACE,
    K_NAME,
    K_UPSTREAM,
    K_IMAGE,
    K_REPLICAS,
    K_SERVICE_TYPE,
    K_CREATE_NS,
    K_POLICY,
    K_KEYPASS,
    K_CLIENT,
    K_OUT,
    K_HELP
};

static const struct option k8s_opts[] = {
    {"pki", required_argument, NULL, K_PKI},
    {"namespace", required_argument, NULL, K_NAMESPACE},
    {"name", required_argument, NULL, K_NAME},
    {"upstream", required_argument, NULL, K_UPSTREAM},
    {"image", required_argument, NULL, K_IMAGE},
    {"replicas", required_argument, NULL, K_REPLICAS},
    {"service-type", required_argument, NULL, K_SERVICE_TYPE},
    {"create-namespace", no_argument, NULL, K_CREATE_NS},
    {"policy", required_argument, NULL, K_POLICY},
    {"key-passphrase-file", required_argument, NULL, K_KEYPASS},
    {"client", required_argument, NULL, K_CLIENT},
    {"out", required_argument, NULL, K_OUT},
    {"help", no_argument, NULL, K_HELP},
    {NULL, 0, NULL, 0},
};

static void help(void)
{
    printf(
        "Usage: pqmtls export k8s --pki DIR [--namespace pqmtls] [--name NAME]\n"
        "                         [--upstream backend:8080] [--image IMAGE] [--replicas 2]\n"
        "                         [--service-type ClusterIP|LoadBalancer] [--create-namespace]\n"
        "                         [--policy FILE] [--key-passphrase-file F] [--client NAME]...\n"
        "                         [--out FILE|-]\n\n"
        "Writes, as one multi-document YAML for `kubectl apply -f`, what runs the pqmtls\n"
        "gateway on Kubernetes in front of the upstream, from the PKI in DIR:\n"
        "  Secret pqmtls-gateway-tls   kubernetes.io/tls: tls.crt (NAME's certificate chain),\n"
        "                              tls.key (its key), ca.crt (client-ca-chain.pem, the only\n"
        "                              CAs clients may chain to), key.pass when the key is\n"
        "                              encrypted (--key-passphrase-file's first line)\n"
        "  ConfigMap pqmtls-gateway    gateway.yaml (checked by the gateway's own parser) and\n"
        "                              client-ca-chain.crl.pem (run `pqmtls pki crl` first)\n"
        "  Deployment pqmtls-gateway   --replicas pods of --image: user 10001, non-root, read-only\n"
        "                              root file system, no privilege escalation, all\n"
        "                              capabilities dropped, seccomp RuntimeDefault, CPU and\n"
        "                              memory requests and limits, no service account token\n"
        "  Service pqmtls-gateway      port 443 to the pods' 8443 (ClusterIP, or LoadBalancer\n"
        "                              with externalTrafficPolicy Local)\n"
        "  PodDisruptionBudget         at most one pod down at a time during node drains\n"
        "  Secret pqmtls-client-NAME   per --client: kubernetes.io/tls with tls.crt (the\n"
        "                              client's certificate chain), tls.key and ca.crt\n"
        "                              (server-ca-chain.pem), for a workload in NS that calls\n"
        "                              the gateway (`pqmtls request`, `pqmtls tunnel`)\n"
        "With --create-namespace a Namespace comes first, enforcing the restricted Pod Security\n"
        "Standard, which the Deployment meets.\n\n"
        "In the pod, the Secret and the ConfigMap are one projected volume at /etc/pqmtls\n"
        "(gateway.yaml, tls/, crl/). When they change (export and apply again after\n"
        "`pqmtls pki crl` or a new certificate), the kubelet swaps the volume's files at once\n"
        "and the gateway reloads them within watch_interval: no restart, connections kept. A\n"
        "changed gateway.yaml changes the pod template's checksum annotation, which rolls the\n"
        "pods (listen, upstream and the like need a restart).\n\n"
        "The admin listener (/healthz, /readyz, /metrics) stays on 127.0.0.1:9901: it has\n"
        "neither TLS nor authentication. The kubelet's httpGet probes cannot reach loopback,\n"
        "so the liveness and readiness probes are exec probes running `pqmtls probe` inside\n"
        "the pod; readiness fails once SIGTERM makes the gateway drain.\n\n"
        "Options:\n"
        "  --pki DIR                  the PKI (pqmtls pki init)\n"
        "  --namespace NS             where the objects go (default pqmtls)\n"
        "  --name NAME                the server certificate (default: the PKI's only valid\n"
        "                             one); clients must reach the gateway by this name\n"
        "  --upstream HOST:PORT       where requests go, resolved once when a pod starts\n"
        "                             (default backend:8080: a Service \"backend\" in NS)\n"
        "  --image IMAGE              the gateway's image, built from deploy/Containerfile\n"
        "                             (default pqmtls-gateway:%s)\n"
        "  --replicas N               pods (default 2)\n"
        "  --service-type TYPE        ClusterIP (default) or LoadBalancer\n"
        "  --create-namespace         also write the Namespace\n"
        "  --policy FILE              the allow, deny and allow_spiffe rules of a gateway\n"
        "                             configuration (docs/gateway.md) go into gateway.yaml,\n"
        "                             as `export istio --policy` takes them for the mesh\n"
        "  --key-passphrase-file F    required when NAME's key is encrypted; checked against it\n"
        "  --client NAME              also a Secret for the client certificate NAME (valid,\n"
        "                             key not encrypted); repeat for more (at most %d)\n"
        "  --out FILE|-               write FILE, mode 0600 (it holds the key), or standard\n"
        "                             output (the default)\n\n"
        "Example:\n"
        "  pqmtls pki crl --pki ./pki\n"
        "  pqmtls export k8s --pki ./pki --name api.example.com --namespace edge \\\n"
        "      --upstream api.production.svc.cluster.local:8080 --service-type LoadBalancer \\\n"
        "      --image registry.example.com/pqmtls-gateway:%s --out gateway-k8s.yaml\n"
        "  kubectl apply -f gateway-k8s.yaml && shred -u gateway-k8s.yaml\n",
        pqm_version(), PQM_K8S_CLIENTS_MAX, pqm_version());
}

static int parse(int argc, char **argv, const char **dir, struct pqm_k8s_export *x,
                 const char **clients)
{
    int c;
    long n = 0;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":", k8s_opts, NULL)) != -1) {
        switch (c) {
        case K_PKI:
            *dir = optarg;
            break;
        case K_NAMESPACE:
            x->namespace_ = optarg;
            break;
        case K_NAME:
            x->name = optarg;
            break;
        case K_UPSTREAM:
            x->upstream = optarg;
            break;
        case K_IMAGE:
            x->image = optarg;
            break;
        case K_REPLICAS:
            if ((n = cli_parse_long(optarg, 1, 1000)) < 0)
                return cli_usage(CMD, "--replicas '%s' is not a whole number from 1 to 1000",
                                 optarg);
            x->replicas = (int)n;
            break;
        case K_SERVICE_TYPE:
            x->service_type = optarg;
            break;
        case K_CREATE_NS:
            x->create_namespace = 1;
            break;
        case K_POLICY:
            x->policy_file = optarg;
            break;
        case K_KEYPASS:
            x->key_passphrase_file = optarg;
            break;
        case K_CLIENT:
            if (x->nclients == PQM_K8S_CLIENTS_MAX)
                return cli_usage(CMD, "--client: at most %d", PQM_K8S_CLIENTS_MAX);
            clients[x->nclients++] = optarg;
            break;
        case K_OUT:
            x->out_file = strcmp(optarg, "-") == 0 ? NULL : optarg;
            break;
        case K_HELP:
            help();
            return EXIT_OK;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind != argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (*dir == NULL)
        return cli_usage(CMD, "--pki DIR is required");
    return -1;
}

int cmd_export_k8s(int argc, char **argv)
{
    const char *dir = NULL;
    struct pqm_k8s_export x = {0};
    const char *clients[PQM_K8S_CLIENTS_MAX];
    x.clients = clients;
    int rc = parse(argc, argv, &dir, &x, clients);
    if (rc != -1)
        return rc;
    struct pqm_pki *pki = cli_pki_open(CMD, dir);
    if (pki == NULL)
        return EXIT_FAIL;
    char *text = NULL;
    rc = EXIT_OK;
    if (pqm_pki_export_k8s(pki, &x, &text) != 0)
        rc = cli_fail(CMD, "%s", pqm_pki_error(pki));
    else if (text != NULL)
        rc = cli_write_stdout(CMD, text);
    else
        fprintf(stderr, "wrote %s (mode 0600: it holds private keys)\n", x.out_file);
    if (text != NULL) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    pqm_pki_free(pki);
    return rc;
}
