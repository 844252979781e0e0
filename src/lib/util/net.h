/* Listening sockets shared by the servers (the gateway, the OCSP responder): addresses,
 * one SO_REUSEPORT listener per worker, and the check that nobody listens there yet. */
#ifndef PQM_UTIL_NET_H
#define PQM_UTIL_NET_H

#include <sys/socket.h>

#include "util/err.h"

/* "HOST:PORT" (HOST may be [v6], empty for any address when PASSIVE) into an address,
 * numeric or resolved once, now. */
int pqm__net_resolve(const char *text, int passive, struct sockaddr_storage *ss, socklen_t *len,
                     struct pqm_err *e);
/* Workers' listeners share the port with SO_REUSEPORT, which would as gladly share it
 * with another process: a plain bind first makes sure nobody listens there yet. WHO
 * names the server in the message ("gateway"). */
int pqm__net_address_free(const struct sockaddr_storage *ss, socklen_t len, const char *text,
                          const char *who, struct pqm_err *e);
/* A non-blocking listening socket with SO_REUSEPORT; its descriptor, or -1. */
int pqm__net_listen(const struct sockaddr_storage *ss, socklen_t len, const char *text,
                    struct pqm_err *e);
/* 1 when SS is 127.0.0.0/8 or ::1. */
int pqm__net_is_loopback(const struct sockaddr_storage *ss);
/* The CPUs this process may run on (its affinity mask: taskset, a container's cpuset),
 * not all the machine has; at least 1. */
int pqm__usable_cores(void);

#endif
