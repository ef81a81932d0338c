#include "core/config.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quic/cid.h"
#include "util/addr.h"
#include "util/errmsg.h"

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
  cfg->retry_auto_threshold = 128;
  cfg->new_token_lifetime = 86400;
  cfg->recv_batch = 32;
  cfg->max_active_requests_per_conn = 0;
  cfg->max_request_resets_per_sec = 200;
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
  cfg->quic_lb_config_id = CID_LB_UNROUTABLE;
  cfg->quic_lb_nonce_len = CID_LB_NONCE_DEFAULT;
  cfg->workers = 1;
}

/* Every failed check names the field and returns H3Q_ECONFIG. */
#define fail(err, errlen, ...) errmsg_set(H3Q_ECONFIG, err, errlen, __VA_ARGS__)

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
  struct sockaddr_storage ss;
  socklen_t len;
  return addr_from_ip(s, 0, &ss, &len);
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
  if (c->workers == 0 || c->workers > H3Q_WORKERS_MAX)
    return fail(err, errlen, "workers: must be 1..%u or auto (got %u)",
                H3Q_WORKERS_MAX, c->workers);
  if (c->drain_timeout_ms > 3600000)
    return fail(err, errlen, "drain_timeout_ms: at most 3600000 (one hour)");
  if (c->ticket_key && c->ticket_key_len != 48)
    return fail(err, errlen, "ticket_key_len: must be 48 bytes (got %zu)",
                c->ticket_key_len);
  if ((int)c->log_level < H3Q_LOG_ERROR || c->log_level > H3Q_LOG_TRACE)
    return fail(err, errlen, "log_level: must be H3Q_LOG_ERROR..H3Q_LOG_TRACE");
  if (c->loop_backend != H3Q_LOOP_LIBEV && c->loop_backend != H3Q_LOOP_EPOLL)
    return fail(err, errlen,
                "loop_backend: must be H3Q_LOOP_LIBEV or H3Q_LOOP_EPOLL");
  if (c->steering != H3Q_STEERING_AUTO && c->steering != H3Q_STEERING_EBPF &&
      c->steering != H3Q_STEERING_HANDOFF)
    return fail(err, errlen, "steering: must be auto, ebpf or handoff");
  return H3Q_OK;
}

#define SOCKET_BUFFER_MIN 2048u
#define SOCKET_BUFFER_MAX (1u << 30)

static int check_buffer(const char *name, size_t v, char *err, size_t errlen) {
  if (v != 0 && (v < SOCKET_BUFFER_MIN || v > SOCKET_BUFFER_MAX))
    return fail(err, errlen, "%s: must be 0 (default) or %u..%u (got %zu)",
                name, SOCKET_BUFFER_MIN, SOCKET_BUFFER_MAX, v);
  return H3Q_OK;
}

static bool metrics_addr_valid(const char *s) {
  struct sockaddr_storage ss;
  socklen_t len;
  return addr_parse_hostport(s, &ss, &len);
}

/* Diagnostics and socket buffers. Whether files can be opened is checked
 * when the server starts them (h3q_server_new), not here. */
static int validate_observability(const h3q_config *c, char *err,
                                  size_t errlen) {
  if (c->log_format != H3Q_LOG_TEXT && c->log_format != H3Q_LOG_JSON)
    return fail(err, errlen,
                "log_format: must be H3Q_LOG_TEXT or H3Q_LOG_JSON");
  if (c->access_log_path && !*c->access_log_path)
    return fail(err, errlen,
                "access_log_path: empty (NULL for none, \"-\" for stdout)");
  if (c->keylog_path && !*c->keylog_path)
    return fail(err, errlen, "keylog_path: empty (NULL for none)");
  if (c->metrics_addr && !metrics_addr_valid(c->metrics_addr))
    return fail(err, errlen,
                "metrics_addr: '%s' is not ADDR:PORT (an IP literal, IPv6 "
                "in brackets, and a port 0..65535)",
                c->metrics_addr);
  if (check_buffer("recv_buffer_size", c->recv_buffer_size, err, errlen) ||
      check_buffer("send_buffer_size", c->send_buffer_size, err, errlen))
    return H3Q_ECONFIG;
  if (c->max_active_downloads_per_conn > 1000000)
    return fail(err, errlen,
                "max_active_downloads_per_conn: at most 1000000 (0 = no "
                "limit)");
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

#define SECRET_MIN 32u
#define SECRET_MAX 4096u

/* Handshakes in progress before Retry turns on: more than any
 * max_connections worth having on one endpoint. */
#define RETRY_AUTO_MAX 1000000u
#define NEW_TOKEN_LIFETIME_MAX 2592000u /* 30 days, in seconds */

/* The server secret, client certificates and address validation. */
static int validate_secrets_tls(const h3q_config *c, char *err, size_t errlen) {
  if (c->secret && (c->secret_len < SECRET_MIN || c->secret_len > SECRET_MAX))
    return fail(err, errlen, "secret_len: must be %u..%u bytes (got %zu)",
                SECRET_MIN, SECRET_MAX, c->secret_len);
  if (c->secret && c->secret_file)
    return fail(err, errlen,
                "secret_file: set either secret or secret_file, not both");
  if (c->secret_file && !*c->secret_file)
    return fail(err, errlen, "secret_file: must not be empty");
  if (c->client_ca_path && !*c->client_ca_path)
    return fail(err, errlen, "client_ca_path: must not be empty");
  if (c->client_cert_required && !c->client_ca_path)
    return fail(err, errlen,
                "client_cert_required: needs client_ca_path (the CAs that "
                "sign client certificates)");
  if (c->retry_auto_threshold > RETRY_AUTO_MAX)
    return fail(err, errlen,
                "retry_auto_threshold: at most %u (0 = never; got %zu)",
                RETRY_AUTO_MAX, c->retry_auto_threshold);
  if (c->new_token_lifetime > NEW_TOKEN_LIFETIME_MAX)
    return fail(err, errlen,
                "new_token_lifetime: at most %u seconds (0 = no NEW_TOKEN; "
                "got %llu)",
                NEW_TOKEN_LIFETIME_MAX,
                (unsigned long long)c->new_token_lifetime);
  return H3Q_OK;
}

int config_load_secret(const char *path, uint8_t **out, size_t *out_len,
                       char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(err, errlen, "secret_file: cannot read '%s': %s", path,
                strerror(errno));
  uint8_t *buf = malloc(SECRET_MAX + 1);
  size_t n = buf ? fread(buf, 1, SECRET_MAX + 1, f) : 0;
  fclose(f);
  if (!buf)
    return H3Q_ENOMEM;
  if (n < SECRET_MIN || n > SECRET_MAX) {
    free(buf);
    fail(err, errlen, "secret_file: '%s' must hold %u..%u bytes (got %s%zu)",
         path, SECRET_MIN, SECRET_MAX, n > SECRET_MAX ? "more than " : "",
         n > SECRET_MAX ? (size_t)SECRET_MAX : n);
    return H3Q_ECONFIG;
  }
  *out = buf;
  *out_len = n;
  return H3Q_OK;
}

int config_validate(const h3q_config *c, char *err, size_t errlen) {
  if (!c->bind_addr || !is_ip_literal(c->bind_addr))
    return fail(err, errlen, "bind_addr: '%s' is not an IPv4 or IPv6 address",
                c->bind_addr ? c->bind_addr : "(null)");
  if (c->port > 65535) /* 0: the kernel picks one (h3q_server_port) */
    return fail(err, errlen, "port: %u is out of range 0..65535", c->port);
  if (!c->cert_path || !*c->cert_path)
    return fail(err, errlen, "cert_path: a certificate file is required");
  if (!c->key_path || !*c->key_path)
    return fail(err, errlen, "key_path: a private key file is required");
  int rc = validate_transport(c, err, errlen);
  if (rc == H3Q_OK)
    rc = validate_dgram(c, err, errlen);
  if (rc == H3Q_OK)
    rc = validate_observability(c, err, errlen);
  if (rc == H3Q_OK)
    rc = validate_secrets_tls(c, err, errlen);
  cid_layout cids;
  if (rc == H3Q_OK &&
      cid_layout_init(&cids, c->quic_lb_config_id, c->quic_lb_server_id,
                      c->quic_lb_nonce_len, err, errlen) != 0)
    rc = H3Q_ECONFIG;
  return rc ? rc : validate_limits(c, err, errlen);
}

static int dup_field(char **dst, const char *src) {
  *dst = NULL;
  if (!src)
    return H3Q_OK;
  *dst = strdup(src);
  return *dst ? H3Q_OK : H3Q_ENOMEM;
}

static int copy_secret(config_owned *dst, const h3q_config *cfg) {
  if (!cfg->secret)
    return H3Q_OK;
  dst->secret = malloc(cfg->secret_len);
  if (!dst->secret)
    return H3Q_ENOMEM;
  memcpy(dst->secret, cfg->secret, cfg->secret_len);
  return H3Q_OK;
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
      dup_field(&dst->keylog_path, cfg->keylog_path) ||
      dup_field(&dst->access_log_path, cfg->access_log_path) ||
      dup_field(&dst->metrics_addr, cfg->metrics_addr) ||

      dup_field(&dst->secret_file, cfg->secret_file) ||
      dup_field(&dst->client_ca_path, cfg->client_ca_path) ||
      dup_field(&dst->quic_lb_server_id, cfg->quic_lb_server_id) ||
      copy_secret(dst, cfg)) {
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
  dst->c.access_log_path = dst->access_log_path;
  dst->c.metrics_addr = dst->metrics_addr;
  dst->c.secret_file = dst->secret_file;
  dst->c.client_ca_path = dst->client_ca_path;
  dst->c.quic_lb_server_id = dst->quic_lb_server_id;
  dst->c.secret = dst->secret;
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
  free(c->access_log_path);
  free(c->metrics_addr);
  free(c->secret_file);
  free(c->client_ca_path);
  free(c->quic_lb_server_id);
  if (c->secret)
    sodium_memzero(c->secret, c->c.secret_len);
  free(c->secret);
  memset(c, 0, sizeof *c);
}
