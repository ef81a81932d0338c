/* A connection's peer address, and what quiche tells about its paths.
 *
 * quiche sees every datagram with the address it came from, so a NAT
 * rebinding (a new port) and a migration (a new IP address) both go
 * through its path handling (RFC 9000 §9): the packet with the highest
 * number moves the sends to the new 4-tuple, which is unvalidated (at most
 * 3x the bytes received on it, §8.1) until quiche's PATH_CHALLENGE is
 * answered; late packets from an old 4-tuple do not move them back.
 *
 * quiche 0.30 alone stranded the packets it had sent on the old path
 * (never declared lost, never resent: a download stalled) and refused a
 * third 4-tuple, and it resent a lost PATH_CHALLENGE only when a loss
 * timer fired (a new path could stay unvalidated for good).
 * deps/quiche/patches/20-path-migration.patch fixes these; before it, h3q
 * hid port changes from quiche and skipped their path validation.
 * tests/integration/test_migration.py covers 1, 2 and 16 rebindings,
 * address changes with data in flight, and a lost PATH_CHALLENGE.
 *
 * This file only follows quiche's path events: c->peer is where quiche
 * last moved the connection (for logs); sends go where quiche says. */
#include "quic/conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

static void set_addr(struct sockaddr_storage *dst, socklen_t *dst_len,
                     const struct sockaddr *src, socklen_t len) {
  if (len > sizeof *dst)
    len = sizeof *dst;
  memcpy(dst, src, len);
  *dst_len = len;
}

void conn_path_init(conn *c, const struct sockaddr *peer, socklen_t len) {
  set_addr(&c->peer, &c->peer_len, peer, len);
}

/* "ip:port" of a for a log line. */
static const char *addr_text(const struct sockaddr_storage *a, char *buf,
                             size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)a;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    port = ntohs(in->sin_port);
  } else if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
  }
  snprintf(buf, size, "%s:%u", ip, port);
  return buf;
}

/* quiche's path events all carry the path's two addresses, read by a
 * getter of the same shape for each event type. */
typedef void (*path_addrs_fn)(const quiche_path_event *ev,
                              struct sockaddr_storage *local,
                              socklen_t *local_len,
                              struct sockaddr_storage *peer,
                              socklen_t *peer_len);

/* Logs "before PEER after" for an event and returns its peer address. */
static socklen_t log_path_event(conn *c, const quiche_path_event *ev,
                                path_addrs_fn addrs, const char *before,
                                const char *after,
                                struct sockaddr_storage *peer) {
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local, peer_len = sizeof *peer;
  char text[INET6_ADDRSTRLEN + 8];
  addrs(ev, &local, &local_len, peer, &peer_len);
  LOG_INFO("conn %llu: %s%s%s", (unsigned long long)c->number, before,
           addr_text(peer, text, sizeof text), after);
  return peer_len;
}

void conn_path_events(conn *c) {
  /* quiche queues one event per path change; bounded by its path table. */
  for (int i = 0; i < 64; i++) {
    quiche_path_event *ev = quiche_conn_path_event_next(c->q);
    if (!ev)
      return;
    struct sockaddr_storage peer;
    enum quiche_path_event_type t = quiche_path_event_type(ev);
    if (t == QUICHE_PATH_EVENT_NEW) {
      log_path_event(c, ev, quiche_path_event_new, "new path from ",
                     ", validating it", &peer);
    } else if (t == QUICHE_PATH_EVENT_VALIDATED) {
      log_path_event(c, ev, quiche_path_event_validated, "path to ",
                     " validated", &peer);
    } else if (t == QUICHE_PATH_EVENT_PEER_MIGRATED) {
      socklen_t len = log_path_event(c, ev, quiche_path_event_peer_migrated,
                                     "peer migrated to ", "", &peer);
      conn_path_init(c, (struct sockaddr *)&peer, len);
      c->migrations++;
    } else if (t == QUICHE_PATH_EVENT_FAILED_VALIDATION) {
      /* quiche then falls back to a validated path, if it has one */
      log_path_event(c, ev, quiche_path_event_failed_validation, "path to ",
                     " failed validation", &peer);
    }
    quiche_path_event_free(ev);
  }
}
