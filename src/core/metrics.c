/* The metrics endpoint: the server's counters as Prometheus text
 * exposition (format 0.0.4), served at /metrics by a small HTTP/1.1
 * listener on the server's own loop (io/http_listen.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/observe.h"
#include "core/server.h"
#include "io/http_listen.h"
#include "util/addr.h"

typedef struct text {
  char *p;
  size_t len, cap;
  bool oom;
} text;

static void put(text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...) {
  for (int attempt = 0; attempt < 2 && !t->oom; attempt++) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->cap - t->len;
    int n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->oom = true;
      return;
    }
    if ((size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = (t->cap ? t->cap * 2 : 8192) + (size_t)n;
    char *p = realloc(t->p, cap);
    if (!p) {
      t->oom = true;
      return;
    }
    t->p = p;
    t->cap = cap;
  }
}

static void family(text *t, const char *name, const char *type,
                   const char *help) {
  put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void single(text *t, const char *name, const char *type,
                   const char *help, uint64_t v) {
  family(t, name, type, help);
  put(t, "%s %llu\n", name, (unsigned long long)v);
}

static void labelled(text *t, const char *name, const char *label,
                     const char *const *values, const uint64_t *counts,
                     size_t n) {
  for (size_t i = 0; i < n; i++)
    put(t, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
        (unsigned long long)counts[i]);
}

static void connections(text *t, const h3q_server_stats *s) {
  static const char *const reasons[H3Q_CLOSE_REASONS] = {
      "idle_timeout", "local", "local_error", "peer", "peer_error", "other"};
  single(t, "h3q_connections_accepted_total", "counter",
         "QUIC connections accepted.", s->connections_accepted);
  single(t, "h3q_connections_active", "gauge", "QUIC connections open now.",
         s->connections_active);
  single(t, "h3q_handshakes_unvalidated", "gauge",
         "Connections in their handshake from unvalidated addresses.",
         s->handshakes_unvalidated);
  family(t, "h3q_connections_closed_total", "counter",
         "QUIC connections ended, by reason.");
  labelled(t, "h3q_connections_closed_total", "reason", reasons,
           s->connections_closed, H3Q_CLOSE_REASONS);
}

static void requests(text *t, const h3q_server_stats *s) {
  static const char *const classes[6] = {"none", "1xx", "2xx",
                                         "3xx",  "4xx", "5xx"};
  single(t, "h3q_requests_total", "counter", "HTTP/3 requests received.",
         s->requests);
  family(t, "h3q_responses_total", "counter",
         "Finished requests by the class of the final status (none: reset "
         "before a status was sent).");
  labelled(t, "h3q_responses_total", "class", classes, s->responses_by_class,
           6);
  single(t, "h3q_response_body_bytes_total", "counter",
         "Response body bytes handed to QUIC.", s->response_body_bytes);
  single(t, "h3q_downloads_rejected_total", "counter",
         "Requests refused with 503 by max_active_downloads_per_conn.",
         s->downloads_rejected);
}

static void duration(text *t, const h3q_server_stats *s) {
  static const double bounds[H3Q_DURATION_BUCKETS - 1] = H3Q_DURATION_BOUNDS;
  const char *name = "h3q_request_duration_seconds";
  family(t, name, "histogram",
         "Time from a request stream's opening to its response's end.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < H3Q_DURATION_BUCKETS; i++) {
    cumulative += s->request_duration_buckets[i];
    if (i + 1 < H3Q_DURATION_BUCKETS)
      put(t, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
          (unsigned long long)cumulative);
    else
      put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name,
          (unsigned long long)cumulative);
  }
  put(t, "%s_sum %.6f\n%s_count %llu\n", name,
      (double)s->request_duration_sum_us / 1e6, name,
      (unsigned long long)cumulative);
}

static void packets(text *t, const h3q_server_stats *s) {
  static const char *const drops[] = {
      "malformed", "unknown_connection", "version", "truncated", "quic",
      "send",      "invalid_token",      "other",   "overload",  "handoff"};
  _Static_assert(sizeof drops / sizeof drops[0] == H3Q_DROP_REASONS,
                 "a label for every h3q_drop_reason");
  single(t, "h3q_udp_datagrams_received_total", "counter",
         "UDP datagrams read.", s->udp_datagrams_received);
  single(t, "h3q_udp_datagrams_sent_total", "counter", "UDP datagrams sent.",
         s->udp_datagrams_sent);
  single(t, "h3q_udp_bytes_received_total", "counter",
         "UDP payload bytes read.", s->udp_bytes_received);
  single(t, "h3q_udp_bytes_sent_total", "counter", "UDP payload bytes sent.",
         s->udp_bytes_sent);
  family(t, "h3q_packets_dropped_total", "counter",
         "Datagrams dropped, by reason.");
  labelled(t, "h3q_packets_dropped_total", "reason", drops,
           s->packets_dropped_by, H3Q_DROP_REASONS);
  single(t, "h3q_version_negotiations_total", "counter",
         "Version Negotiation packets sent.", s->version_negotiations_sent);
  single(t, "h3q_retries_total", "counter", "Retry packets sent.",
         s->retries_sent);
  single(t, "h3q_retries_under_load_total", "counter",
         "Retry packets sent because of load (retry_auto_threshold).",
         s->retries_under_load);
  single(t, "h3q_new_tokens_sent_total", "counter",
         "Address-validation tokens sent in NEW_TOKEN frames.",
         s->new_tokens_sent);
  single(t, "h3q_new_tokens_accepted_total", "counter",
         "New connections validated by a NEW_TOKEN token (no Retry).",
         s->new_tokens_accepted);
  single(t, "h3q_stateless_resets_total", "counter", "Stateless resets sent.",
         s->stateless_resets_sent);
  single(t, "h3q_packets_handed_off_total", "counter",
         "Datagrams handed to the server of the port that owns their "
         "connection.",
         s->packets_handed_off);
  single(t, "h3q_packets_handed_in_total", "counter",
         "Datagrams another server of the port handed over.",
         s->packets_handed_in);
}

static void datagrams(text *t, const h3q_server_stats *s) {
  static const char *const drops[4] = {"send_queue", "recv_queue", "too_large",
                                       "unroutable"};
  const uint64_t dropped[4] = {s->datagrams_send_dropped,
                               s->datagrams_recv_dropped,
                               s->datagrams_too_large, s->datagrams_unroutable};
  single(t, "h3q_datagrams_received_total", "counter",
         "QUIC DATAGRAM frames received.", s->datagrams_received);
  single(t, "h3q_datagrams_sent_total", "counter",
         "QUIC DATAGRAM frames queued for sending.", s->datagrams_sent);
  family(t, "h3q_datagrams_dropped_total", "counter",
         "QUIC DATAGRAM frames dropped, by reason.");
  labelled(t, "h3q_datagrams_dropped_total", "reason", drops, dropped, 4);
}

static void webtransport(text *t, const h3q_server_stats *s) {
  static const char *const results[2] = {"accepted", "rejected"};
  static const char *const streams[2] = {"opened", "rejected"};
  const uint64_t ses[2] = {s->wt_sessions_accepted, s->wt_sessions_rejected};
  const uint64_t st[2] = {s->wt_streams_opened, s->wt_streams_rejected};
  family(t, "h3q_webtransport_sessions_total", "counter",
         "WebTransport sessions, by outcome.");
  labelled(t, "h3q_webtransport_sessions_total", "result", results, ses, 2);
  single(t, "h3q_webtransport_sessions_active", "gauge",
         "WebTransport sessions open now.", s->wt_sessions_active);
  family(t, "h3q_webtransport_streams_total", "counter",
         "WebTransport streams, by outcome.");
  labelled(t, "h3q_webtransport_streams_total", "result", streams, st, 2);
}

/* Each worker's share (h3q_config.workers), so that an operator sees how
 * the kernel spread the clients. */
static void per_worker(text *t, const h3q_server *srv) {
  family(t, "h3q_worker_connections_accepted_total", "counter",
         "QUIC connections accepted, by worker (event loop).");
  for (size_t i = 0; i < srv->nworkers; i++)
    put(t, "h3q_worker_connections_accepted_total{worker=\"%zu\"} %llu\n", i,
        (unsigned long long)srv->workers[i].stats.connections_accepted);
  family(t, "h3q_worker_requests_total", "counter",
         "HTTP/3 requests received, by worker (event loop).");
  for (size_t i = 0; i < srv->nworkers; i++)
    put(t, "h3q_worker_requests_total{worker=\"%zu\"} %llu\n", i,
        (unsigned long long)srv->workers[i].stats.requests);
}

static bool render(const h3q_server *srv, text *t) {
  h3q_server_stats sum;
  server_sum_stats(srv, &sum);
  const h3q_server_stats *s = &sum;
  connections(t, s);
  requests(t, s);
  duration(t, s);
  packets(t, s);
  datagrams(t, s);
  webtransport(t, s);
  per_worker(t, srv);
  return !t->oom;
}

static int on_get(const char *path, char **body, size_t *len,
                  const char **content_type, void *user) {
  if (strcmp(path, "/metrics") != 0)
    return 404;
  text t = {0};
  if (!render(user, &t)) {
    free(t.p);
    return 200; /* NULL body: the listener answers 500 */
  }
  *body = t.p;
  *len = t.len;
  *content_type = "text/plain; version=0.0.4; charset=utf-8";
  return 200;
}

ssize_t h3q_server_metrics_text(const h3q_server *srv, char *out, size_t len) {
  if (!srv || (!out && len))
    return H3Q_EINVAL;
  text t = {0};
  if (!render(srv, &t)) {
    free(t.p);
    return H3Q_ENOMEM;
  }
  if (len) {
    size_t n = t.len < len - 1 ? t.len : len - 1;
    memcpy(out, t.p, n);
    out[n] = '\0';
  }
  free(t.p);
  return (ssize_t)t.len;
}

int server_start_metrics(h3q_server *srv, char *err, size_t errlen) {
  const char *addr = srv->cfg.c.metrics_addr;
  if (!addr)
    return H3Q_OK;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!addr_parse_hostport(addr, &ss, &sl)) {
    snprintf(err, errlen, "metrics_addr: '%s' is not ADDR:PORT", addr);
    return H3Q_ECONFIG;
  }
  srv->metrics =
      http_listener_new(srv->workers[0].ep.lo, srv->workers[0].ep.loop,
                        (struct sockaddr *)&ss, sl, on_get, srv, err, errlen);
  return srv->metrics ? H3Q_OK : H3Q_EIO;
}

void server_stop_metrics(h3q_server *srv) {
  http_listener_free(srv->metrics);
  srv->metrics = NULL;
}

uint16_t h3q_server_metrics_port(const h3q_server *srv) {
  return srv ? http_listener_port(srv->metrics) : 0;
}
