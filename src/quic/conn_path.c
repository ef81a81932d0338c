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
 * third 4-tuple. deps/quiche/patches/20-path-migration.patch fixes both;
 * before it, h3q hid port changes from quiche and skipped their path
 * validation. tests/integration/test_migration.py covers 1, 2 and 16
 * rebindings and address changes with data in flight.
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

static void on_new_path(conn *c, const quiche_path_event *ev) {
  struct sockaddr_storage local, peer;
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  char text[INET6_ADDRSTRLEN + 8];
  quiche_path_event_new(ev, &local, &local_len, &peer, &peer_len);
  LOG_INFO("conn %llu: new path from %s, validating it",
           (unsigned long long)c->number, addr_text(&peer, text, sizeof text));
}

static void on_validated(conn *c, const quiche_path_event *ev) {
  struct sockaddr_storage local, peer;
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  char text[INET6_ADDRSTRLEN + 8];
  quiche_path_event_validated(ev, &local, &local_len, &peer, &peer_len);
  LOG_INFO("conn %llu: path to %s validated", (unsigned long long)c->number,
           addr_text(&peer, text, sizeof text));
}

static void on_peer_migrated(conn *c, const quiche_path_event *ev) {
  struct sockaddr_storage local, peer;
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  char text[INET6_ADDRSTRLEN + 8];
  quiche_path_event_peer_migrated(ev, &local, &local_len, &peer, &peer_len);
  LOG_INFO("conn %llu: peer migrated to %s", (unsigned long long)c->number,
           addr_text(&peer, text, sizeof text));
  conn_path_init(c, (struct sockaddr *)&peer, peer_len);
  c->migrations++;
}

void conn_path_events(conn *c) {
  /* quiche queues one event per path change; bounded by its path table. */
  for (int i = 0; i < 64; i++) {
    quiche_path_event *ev = quiche_conn_path_event_next(c->q);
    if (!ev)
      return;
    enum quiche_path_event_type t = quiche_path_event_type(ev);
    if (t == QUICHE_PATH_EVENT_NEW)
      on_new_path(c, ev);
    else if (t == QUICHE_PATH_EVENT_VALIDATED)
      on_validated(c, ev);
    else if (t == QUICHE_PATH_EVENT_PEER_MIGRATED)
      on_peer_migrated(c, ev);
    else if (t == QUICHE_PATH_EVENT_FAILED_VALIDATION)
      LOG_DEBUG("conn %llu: path validation failed",
                (unsigned long long)c->number);
    quiche_path_event_free(ev);
  }
}
