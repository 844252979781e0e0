/* systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to the
 * socket named by $NOTIFY_SOCKET. Does nothing when not started by systemd. */
#ifndef PQM_UTIL_SDNOTIFY_H
#define PQM_UTIL_SDNOTIFY_H

/* Sends STATE ("READY=1", "RELOADING=1", "STOPPING=1", ...); 0 also when there is no
 * $NOTIFY_SOCKET, -1 when the send failed. */
int pqm__sd_notify(const char *state);

#endif
