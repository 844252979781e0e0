#ifndef PQM_CLI_COMMANDS_H
#define PQM_CLI_COMMANDS_H

/* Each gets argv with argv[0] the subcommand's last word. */
int cmd_pki_init(int argc, char **argv);
int cmd_gateway(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_request(int argc, char **argv);
int cmd_tunnel(int argc, char **argv);
int cmd_pki_issue(int argc, char **argv);
int cmd_pki_sign_csr(int argc, char **argv);
int cmd_pki_list(int argc, char **argv);
int cmd_pki_tree(int argc, char **argv);
int cmd_pki_check(int argc, char **argv);
int cmd_pki_revoke(int argc, char **argv);
int cmd_pki_renew(int argc, char **argv);
int cmd_pki_crl(int argc, char **argv);
int cmd_pki_configure(int argc, char **argv);
int cmd_pki_status(int argc, char **argv);
int cmd_export_nginx(int argc, char **argv);
int cmd_export_istio(int argc, char **argv);
int cmd_export_k8s(int argc, char **argv);
int cmd_export_istio_cacerts(int argc, char **argv);
int cmd_pki_mesh(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_ocsp_signers(int argc, char **argv);
int cmd_ocsp_serve(int argc, char **argv);

#endif
