/* Observability: per-request metrics and the access log (fed by the
 * HTTP/3 layer's on_request_done), per-connection transport statistics,
 * and quiche's own debug log routed into h3q's. */
#include "core/observe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/server.h"
#include "h3/stream.h"
#include "util/log.h"

static const double duration_bounds[H3Q_DURATION_BUCKETS - 1] =
    H3Q_DURATION_BOUNDS;

static void count_request(h3q_server_stats *st, const h3_request_done *d) {
  int status = d->status;
  size_t cls = status >= 100 && status <= 599 ? (size_t)(status / 100) : 0;
  st->responses_by_class[cls]++;
  st->response_body_bytes += d->body_bytes;
  double secs = (double)d->duration_ns / 1e9;
  size_t b = 0;
  while (b < H3Q_DURATION_BUCKETS - 1 && secs > duration_bounds[b])
    b++;
  st->request_duration_buckets[b]++;
  st->request_duration_sum_us += d->duration_ns / 1000u;
}

/* Paths are validated (no spaces or control characters), but the method
 * may be anything token-like: text lines stay one field per value. */
static void write_access_line(FILE *f, const h3q_request *req,
                              const h3_request_done *d) {
  const char *method = h3q_request_method(req);
  const char *path = h3q_request_path(req);
  method = method ? method : "-";
  path = path ? path : "-";
  char when[40];
  log_format_time(when, sizeof when, true);
  double ms = (double)d->duration_ns / 1e6;
  unsigned long long cid = h3q_request_connection_id(req);
  unsigned long long sid = h3q_request_stream_id(req);
  if (log_get_format() == H3Q_LOG_JSON) {
    char m[64], p[2048 * 2];
    log_json_escape(m, sizeof m, method);
    log_json_escape(p, sizeof p, path);
    fprintf(f,
            "{\"ts\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
            "\"bytes\":%" PRIu64 ",\"duration_ms\":%.3f,\"conn\":%llu,"
            "\"stream\":%llu,\"aborted\":%s}\n",
            when, m, p, d->status, d->body_bytes, ms, cid, sid,
            d->aborted ? "true" : "false");
  } else {
    fprintf(f, "%s %s %s %d %" PRIu64 " %.3fms conn=%llu stream=%llu%s\n", when,
            method, path, d->status, d->body_bytes, ms, cid, sid,
            d->aborted ? " aborted" : "");
  }
}

void server_on_request_done(const h3q_request *req, const h3_request_done *d,
                            void *user) {
  server_worker *w = user;
  count_request(&w->stats, d);
  /* One fprintf per line: stdio's lock keeps workers' lines whole. */
  if (w->srv->access_log)
    write_access_line(w->srv->access_log, req, d);
}

int server_open_access_log(h3q_server *srv, char *err, size_t errlen) {
  const char *path = srv->cfg.c.access_log_path;
  if (!path)
    return H3Q_OK;
  if (strcmp(path, "-") == 0) {
    srv->access_log = stdout;
    return H3Q_OK;
  }
  FILE *f = fopen(path, "a");
  if (!f) {
    snprintf(err, errlen, "access_log_path: cannot open '%s': %s", path,
             strerror(errno));
    return H3Q_EIO;
  }
  /* Lines are buffered and flushed by the housekeeping tick, so the loop
   * does not make a system call per request. */
  setvbuf(f, NULL, _IOFBF, 1 << 16);
  srv->access_log = f;
  srv->access_log_owned = true;
  return H3Q_OK;
}

void server_flush_access_log(h3q_server *srv) {
  if (srv->access_log)
    fflush(srv->access_log);
}

void server_close_access_log(h3q_server *srv) {
  if (!srv->access_log)
    return;
  if (srv->access_log_owned)
    fclose(srv->access_log);
  else
    fflush(srv->access_log);
  srv->access_log = NULL;
}

static void quiche_line(const char *line, void *argp) {
  (void)argp;
  if (log_runtime_level >= H3Q_LOG_TRACE)
    log_write(H3Q_LOG_TRACE, "quiche: %s", line);
}

void server_route_quiche_log(void) {
  /* quiche keeps one logger per process and makes formatting its debug
   * lines cost something from then on: only at trace level, and once. */
  static bool routed;
  if (routed || log_runtime_level < H3Q_LOG_TRACE)
    return;
  routed = true;
  if (quiche_enable_debug_logging(quiche_line, NULL) != 0)
    LOG_WARN("quiche: cannot route its debug log (a logger is set already)");
}

int h3q_request_conn_stats(const h3q_request *req, h3q_conn_stats *out,
                           size_t size) {
  if (!req || !out)
    return H3Q_EINVAL;
  if (!h3_request_is_open(req))
    return H3Q_ECLOSED;
  quiche_conn *q = h3_session_quiche(h3_request_session(req));
  h3q_conn_stats cs;
  memset(&cs, 0, sizeof cs);
  quiche_stats st;
  quiche_conn_stats(q, &st);
  cs.packets_sent = st.sent;
  cs.packets_received = st.recv;
  cs.packets_lost = st.lost;
  cs.packets_retransmitted = st.retrans;
  cs.bytes_sent = st.sent_bytes;
  cs.bytes_received = st.recv_bytes;
  cs.bytes_lost = st.lost_bytes;
  quiche_path_stats ps;
  if (quiche_conn_path_stats(q, 0, &ps) == 0) {
    cs.rtt_us = ps.rtt / 1000u;
    cs.min_rtt_us = ps.min_rtt / 1000u;
    cs.rttvar_us = ps.rttvar / 1000u;
    cs.cwnd = ps.cwnd;
    cs.pmtu = ps.pmtu;
    cs.delivery_rate = ps.delivery_rate;
  }
  memcpy(out, &cs, size < sizeof cs ? size : sizeof cs);
  return H3Q_OK;
}
