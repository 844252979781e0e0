# Finds OpenSSL >= 3.5 (the system's, or PQMTLS_OPENSSL_PREFIX) through pkg-config,
# defines PQMTLS::OpenSSL, PQMTLS_OPENSSL_LIBDIR and PQMTLS_OPENSSL_BIN, and fails
# with a clear message when ML-DSA-65 or the X25519MLKEM768 group is missing.
find_package(PkgConfig REQUIRED)
if(PQMTLS_OPENSSL_PREFIX)
  set(ENV{PKG_CONFIG_PATH} "${PQMTLS_OPENSSL_PREFIX}/lib/pkgconfig:${PQMTLS_OPENSSL_PREFIX}/lib64/pkgconfig")
  set(ENV{PKG_CONFIG_LIBDIR} "${PQMTLS_OPENSSL_PREFIX}/lib/pkgconfig:${PQMTLS_OPENSSL_PREFIX}/lib64/pkgconfig")
endif()
pkg_check_modules(PQM_OSSL IMPORTED_TARGET GLOBAL libssl>=3.5 libcrypto>=3.5)
unset(ENV{PKG_CONFIG_LIBDIR})
if(NOT PQM_OSSL_FOUND)
  message(FATAL_ERROR
    "pqmtls needs OpenSSL >= 3.5 (ML-DSA, ML-KEM). None found through pkg-config"
    "${PQMTLS_OPENSSL_PREFIX}. Run scripts/deps.sh (or `make`), which builds OpenSSL 3.5 "
    "from Debian 13's source package, and pass -DPQMTLS_OPENSSL_PREFIX=<its output>.")
endif()
add_library(PQMTLS::OpenSSL ALIAS PkgConfig::PQM_OSSL)
pkg_get_variable(PQMTLS_OPENSSL_LIBDIR libcrypto libdir)
pkg_get_variable(_pqm_ossl_prefix libcrypto prefix)
set(PQMTLS_OPENSSL_BIN "${_pqm_ossl_prefix}/bin/openssl")
if(NOT EXISTS "${PQMTLS_OPENSSL_BIN}")
  find_program(PQMTLS_OPENSSL_BIN_FOUND openssl)
  set(PQMTLS_OPENSSL_BIN "${PQMTLS_OPENSSL_BIN_FOUND}")
endif()
message(STATUS "OpenSSL ${PQM_OSSL_libcrypto_VERSION} in ${PQMTLS_OPENSSL_LIBDIR}, CLI ${PQMTLS_OPENSSL_BIN}")

# The features pqmtls is built around must really be there.
set(_probe "${CMAKE_BINARY_DIR}/openssl_probe.c")
file(WRITE "${_probe}" [=[
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
int main(void) {
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ML-DSA-65");
    if (k == NULL) { puts("ML-DSA-65 key generation failed"); return 1; }
    EVP_PKEY_free(k);
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (c == NULL || SSL_CTX_set1_groups_list(c, "X25519MLKEM768") != 1) {
        puts("TLS group X25519MLKEM768 unavailable"); return 1;
    }
    SSL_CTX_free(c);
    puts("ok");
    return 0;
}
]=])
try_run(_run_rc _compile_ok "${CMAKE_BINARY_DIR}/openssl_probe" "${_probe}"
  CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${PQM_OSSL_INCLUDE_DIRS}"
  LINK_OPTIONS "-L${PQMTLS_OPENSSL_LIBDIR}" "-Wl,-rpath,${PQMTLS_OPENSSL_LIBDIR}"
  LINK_LIBRARIES ssl crypto
  COMPILE_OUTPUT_VARIABLE _compile_out
  RUN_OUTPUT_VARIABLE _run_out)
if(NOT _compile_ok)
  message(FATAL_ERROR "Cannot build against OpenSSL in ${PQMTLS_OPENSSL_LIBDIR}:\n${_compile_out}")
endif()
if(NOT _run_rc EQUAL 0)
  message(FATAL_ERROR "The OpenSSL in ${PQMTLS_OPENSSL_LIBDIR} lacks what pqmtls needs: ${_run_out}")
endif()
