/* A C service calling an mTLS API with libpqmtls: GET HOST:PORT/PATH, print the answer.
 * Usage: mtls_get HOST PORT PATH CERT KEY CA [ADDR]   (ADDR: connect there instead) */
#include <stdio.h>
#include <pqmtls/client.h>

int main(int argc, char **argv)
{
    if (argc < 7)
        return fprintf(stderr, "usage: mtls_get HOST PORT PATH CERT KEY CA [ADDR]\n"), 2;
    struct pqm_client_config *cfg = pqm_client_config_new();
    pqm_client_config_set_cert_file(cfg, argv[4]);
    pqm_client_config_set_key_file(cfg, argv[5]);
    pqm_client_config_set_ca_file(cfg, argv[6]);
    struct pqm_conn *c = pqm_client_config_load(cfg) == 0 ? pqm_conn_new(cfg) : NULL;
    char buf[16384];
    int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     argv[3], argv[1]);
    ssize_t r = -1;
    if (c == NULL)
        fprintf(stderr, "mtls_get: %s\n", pqm_client_config_error(cfg));
    else if (pqm_conn_connect(c, argc > 7 ? argv[7] : argv[1], argv[2], argv[1]) != 0 ||
             pqm_conn_write(c, buf, (size_t)n) != n)
        fprintf(stderr, "mtls_get: %s\n", pqm_conn_error(c));
    else {
        while ((r = pqm_conn_read(c, buf, sizeof(buf))) > 0)
            fwrite(buf, 1, (size_t)r, stdout);
        fprintf(stderr, "mtls_get: %s, %s\n", pqm_conn_version(c), pqm_conn_group(c));
        pqm_conn_close(c);
    }
    pqm_conn_free(c);
    pqm_client_config_free(cfg);
    return r < 0 ? 1 : 0;
}
