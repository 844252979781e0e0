/* pqmtls: post-quantum mutual TLS infrastructure. The whole public API. */
#ifndef PQMTLS_PQMTLS_H
#define PQMTLS_PQMTLS_H
#include <pqmtls/common.h>
#include <pqmtls/client.h>
#include <pqmtls/export.h>
#include <pqmtls/gateway.h>
#include <pqmtls/ocsp.h>
#include <pqmtls/pki.h>
#include <pqmtls/x509.h>
#endif
