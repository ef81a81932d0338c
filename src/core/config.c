#include "core/config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void h3q_config_init(h3q_config *cfg) {
  if (!cfg)
    return;
  memset(cfg, 0, sizeof *cfg);
  cfg->bind_addr = "0.0.0.0";
  cfg->port = 4433;
  cfg->idle_timeout_ms = 30000;
  cfg->initial_max_data = 2u * 1024 * 1024;
  cfg->initial_max_stream_data_bidi_local = 1024 * 1024;
  cfg->initial_max_stream_data_bidi_remote = 1024 * 1024;
  cfg->initial_max_stream_data_uni = 1024 * 1024;
  cfg->initial_max_streams_bidi = 100;
  cfg->initial_max_streams_uni = 10;
  cfg->max_recv_udp_payload_size = 1350;
  cfg->max_send_udp_payload_size = 1350;
  cfg->disable_active_migration = true;
  cfg->enable_pmtud = false;
  cfg->enable_pacing = true;
  cfg->cc_algorithm = "cubic";
  cfg->grease = true;
  cfg->alpn = "h3";
  cfg->qpack_max_table_capacity = 4096;
  cfg->qpack_blocked_streams = 16;
  cfg->max_connections = 10000;
  cfg->recv_batch = 32;
  cfg->max_active_requests_per_conn = 0;
  cfg->max_header_count = 100;
  cfg->max_header_name_length = 256;
  cfg->max_header_value_length = 8192;
  cfg->max_request_headers_size = 16384;
  cfg->max_path_length = 2048;
  cfg->max_request_body_size = 100u * 1024 * 1024;
  cfg->request_header_timeout_ms = 10000;
  cfg->body_idle_timeout_ms = 30000;
  cfg->drain_timeout_ms = 5000;
  cfg->dgram_recv_queue_len = 256;
  cfg->dgram_send_queue_len = 256;
  cfg->dgram_max_payload_size = 65527;
  cfg->wt_max_sessions_per_conn = 16;
  cfg->wt_max_streams_per_session = 256;
  cfg->log_level = H3Q_LOG_WARN;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return H3Q_ECONFIG;
}

/* Encodes "h3,foo" as the length-prefixed wire list; returns its length or
 * 0 when an entry is empty, longer than 255, or the list does not fit. */
static size_t alpn_encode(const char *list, unsigned char *out, size_t cap) {
  size_t n = 0;
  const char *p = list;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == 0 || len > 255 || n + 1 + len > cap)
      return 0;
    out[n++] = (unsigned char)len;
    memcpy(out + n, p, len);
    n += len;
    p += len + (comma ? 1 : 0);
    if (comma && !*p)
      return 0; /* trailing comma */
  }
  return n;
}

/* Every protocol in the list is one h3q can speak. */
static bool alpn_only_h3(const char *list) {
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (len != 2 || memcmp(p, "h3", 2) != 0)
      return false;
    p += len + (p[len] == ',' ? 1 : 0);
  }
  return true;
}

#define QPACK_CAPACITY_MAX (1u << 20)
#define QPACK_BLOCKED_MAX 1000u

static bool is_ip_literal(const char *s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int validate_transport(const h3q_config *c, char *err, size_t errlen) {
  if (c->idle_timeout_ms == 0)
    return fail(err, errlen, "idle_timeout_ms: must be > 0");
  if (c->initial_max_data == 0)
    return fail(err, errlen, "initial_max_data: must be > 0");
  if (c->initial_max_stream_data_bidi_remote == 0)
    return fail(err, errlen,
                "initial_max_stream_data_bidi_remote: must be > 0");
  if (c->initial_max_stream_data_uni == 0)
    return fail(err, errlen, "initial_max_stream_data_uni: must be > 0");
  if (c->initial_max_streams_bidi == 0)
    return fail(err, errlen, "initial_max_streams_bidi: must be > 0");
  if (c->initial_max_streams_uni < 3)
    return fail(err, errlen,
                "initial_max_streams_uni: HTTP/3 needs at least 3 (got %llu)",
                (unsigned long long)c->initial_max_streams_uni);
  if (c->max_recv_udp_payload_size < 1200 ||
      c->max_recv_udp_payload_size > 65527)
    return fail(err, errlen, "max_recv_udp_payload_size: must be 1200..65527");
  if (c->max_send_udp_payload_size < 1200 ||
      c->max_send_udp_payload_size > 65527)
    return fail(err, errlen, "max_send_udp_payload_size: must be 1200..65527");
  if (!c->cc_algorithm || (strcmp(c->cc_algorithm, "cubic") != 0 &&
                           strcmp(c->cc_algorithm, "reno") != 0 &&
                           strcmp(c->cc_algorithm, "bbr2") != 0))
    return fail(err, errlen, "cc_algorithm: must be cubic, reno or bbr2");
  unsigned char wire[256];
  if (!c->alpn || alpn_encode(c->alpn, wire, sizeof wire) == 0)
    return fail(err, errlen,
                "alpn: must be a comma-separated list of 1..255 "
                "byte protocol names");
  if (!alpn_only_h3(c->alpn))
    return fail(err, errlen, "alpn: h3q speaks only \"h3\" (got \"%s\")",
                c->alpn);
  if (c->qpack_max_table_capacity > QPACK_CAPACITY_MAX)
    return fail(err, errlen, "qpack_max_table_capacity: at most %u",
                QPACK_CAPACITY_MAX);
  if (c->qpack_blocked_streams > QPACK_BLOCKED_MAX)
    return fail(err, errlen, "qpack_blocked_streams: at most %u",
                QPACK_BLOCKED_MAX);
  return H3Q_OK;
}

static int validate_limits(const h3q_config *c, char *err, size_t errlen) {
  if (c->max_connections == 0)
    return fail(err, errlen, "max_connections: must be > 0");
  if (c->recv_batch == 0 || c->recv_batch > 1024)
    return fail(err, errlen, "recv_batch: must be 1..1024");
  if (c->max_header_count == 0)
    return fail(err, errlen, "max_header_count: must be > 0");
  if (c->max_header_name_length == 0)
    return fail(err, errlen, "max_header_name_length: must be > 0");
  if (c->max_header_value_length == 0)
    return fail(err, errlen, "max_header_value_length: must be > 0");
  if (c->max_request_headers_size == 0)
    return fail(err, errlen, "max_request_headers_size: must be > 0");
  if (c->max_path_length == 0)
    return fail(err, errlen, "max_path_length: must be > 0");
  if (c->max_request_body_size == 0)
    return fail(err, errlen, "max_request_body_size: must be > 0");
  if (c->drain_timeout_ms > 3600000)
    return fail(err, errlen, "drain_timeout_ms: at most 3600000 (one hour)");
  if (c->enable_early_data && c->ticket_key && c->ticket_key_len != 48)
    return fail(err, errlen, "ticket_key_len: must be 48 bytes (got %zu)",
                c->ticket_key_len);
  if ((int)c->log_level < H3Q_LOG_ERROR || c->log_level > H3Q_LOG_TRACE)
    return fail(err, errlen, "log_level: must be H3Q_LOG_ERROR..H3Q_LOG_TRACE");
  if (c->loop_backend != H3Q_LOOP_LIBEV && c->loop_backend != H3Q_LOOP_EPOLL)
    return fail(err, errlen,
                "loop_backend: must be H3Q_LOOP_LIBEV or H3Q_LOOP_EPOLL");
  return H3Q_OK;
}

#define DGRAM_QUEUE_MAX 65536u
#define DGRAM_PAYLOAD_MIN 16u
#define DGRAM_PAYLOAD_MAX 65527u

static int validate_dgram(const h3q_config *c, char *err, size_t errlen) {
  if (c->dgram_recv_queue_len == 0 || c->dgram_recv_queue_len > DGRAM_QUEUE_MAX)
    return fail(err, errlen, "dgram_recv_queue_len: must be 1..%u",
                DGRAM_QUEUE_MAX);
  if (c->dgram_send_queue_len == 0 || c->dgram_send_queue_len > DGRAM_QUEUE_MAX)
    return fail(err, errlen, "dgram_send_queue_len: must be 1..%u",
                DGRAM_QUEUE_MAX);
  if (c->dgram_max_payload_size < DGRAM_PAYLOAD_MIN ||
      c->dgram_max_payload_size > DGRAM_PAYLOAD_MAX)
    return fail(err, errlen, "dgram_max_payload_size: must be %u..%u",
                DGRAM_PAYLOAD_MIN, DGRAM_PAYLOAD_MAX);
  if (c->wt_max_sessions_per_conn == 0 || c->wt_max_sessions_per_conn > 65535)
    return fail(err, errlen, "wt_max_sessions_per_conn: must be 1..65535");
  if (c->wt_max_streams_per_session == 0 ||
      c->wt_max_streams_per_session > 1000000)
    return fail(err, errlen, "wt_max_streams_per_session: must be 1..1000000");
  if (c->enable_h3_datagram && !c->enable_dgram && !c->enable_webtransport)
    return fail(err, errlen,
                "enable_h3_datagram: needs enable_dgram (HTTP Datagrams "
                "travel in QUIC DATAGRAM frames)");
  return H3Q_OK;
}

int config_validate(const h3q_config *c, char *err, size_t errlen) {
  if (!c->bind_addr || !is_ip_literal(c->bind_addr))
    return fail(err, errlen, "bind_addr: '%s' is not an IPv4 or IPv6 address",
                c->bind_addr ? c->bind_addr : "(null)");
  if (c->port == 0 || c->port > 65535)
    return fail(err, errlen, "port: %u is out of range 1..65535", c->port);
  if (!c->cert_path || !*c->cert_path)
    return fail(err, errlen, "cert_path: a certificate file is required");
  if (!c->key_path || !*c->key_path)
    return fail(err, errlen, "key_path: a private key file is required");
  int rc = validate_transport(c, err, errlen);
  if (rc == H3Q_OK)
    rc = validate_dgram(c, err, errlen);
  return rc ? rc : validate_limits(c, err, errlen);
}

static int dup_field(char **dst, const char *src) {
  *dst = NULL;
  if (!src)
    return H3Q_OK;
  *dst = strdup(src);
  return *dst ? H3Q_OK : H3Q_ENOMEM;
}

int config_copy(config_owned *dst, const h3q_config *cfg) {
  memset(dst, 0, sizeof *dst);
  dst->c = *cfg;
  dst->c.internal = NULL; /* the caller's copies stay the caller's */
  if (dup_field(&dst->bind_addr, cfg->bind_addr) ||
      dup_field(&dst->cert_path, cfg->cert_path) ||
      dup_field(&dst->key_path, cfg->key_path) ||
      dup_field(&dst->cc_algorithm, cfg->cc_algorithm) ||
      dup_field(&dst->alpn, cfg->alpn) ||
      dup_field(&dst->qlog_dir, cfg->qlog_dir) ||
      dup_field(&dst->keylog_path, cfg->keylog_path)) {
    config_owned_free(dst);
    return H3Q_ENOMEM;
  }
  dst->c.bind_addr = dst->bind_addr;
  dst->c.cert_path = dst->cert_path;
  dst->c.key_path = dst->key_path;
  dst->c.cc_algorithm = dst->cc_algorithm;
  dst->c.alpn = dst->alpn;
  dst->c.qlog_dir = dst->qlog_dir;
  dst->c.keylog_path = dst->keylog_path;
  if (cfg->ticket_key && cfg->ticket_key_len == sizeof dst->ticket_key) {
    memcpy(dst->ticket_key, cfg->ticket_key, sizeof dst->ticket_key);
    dst->c.ticket_key = dst->ticket_key;
  } else {
    dst->c.ticket_key = NULL;
  }
  dst->alpn_wire_len =
      alpn_encode(dst->alpn, dst->alpn_wire, sizeof dst->alpn_wire);
  return H3Q_OK;
}

void config_owned_free(config_owned *c) {
  free(c->bind_addr);
  free(c->cert_path);
  free(c->key_path);
  free(c->cc_algorithm);
  free(c->alpn);
  free(c->qlog_dir);
  free(c->keylog_path);
  memset(c, 0, sizeof *c);
}
