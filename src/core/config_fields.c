/* Configuration by field name (h3q_config_set): one table of every
 * h3q_config field, so bindings (Bun's FFI) and the command line set
 * fields without knowing the struct layout. String values are copied into
 * a store the config owns (h3q_config_free releases it). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "h3q.h"

typedef enum field_kind {
  F_STR,
  F_U64,
  F_SIZE,
  F_U32,
  F_BOOL,
  F_LOG,
  F_LOOP,    /* loop_backend: libev or epoll */
  F_LOGFMT,  /* log_format: text or json */
  F_KEY,     /* ticket_key: 96 hex digits */
  F_WORKERS, /* workers: a number, or auto (online CPUs) */
  F_STEER,   /* steering: auto, ebpf or handoff */
} field_kind;

typedef struct field_def {
  const char *name;
  field_kind kind;
  size_t offset;
} field_def;

#define FIELD(f, kind)                                                         \
  { #f, kind, offsetof(h3q_config, f) }

static const field_def fields[] = {
    FIELD(bind_addr, F_STR),
    FIELD(port, F_U32),
    FIELD(cert_path, F_STR),
    FIELD(key_path, F_STR),
    FIELD(idle_timeout_ms, F_U64),
    FIELD(initial_max_data, F_U64),
    FIELD(initial_max_stream_data_bidi_local, F_U64),
    FIELD(initial_max_stream_data_bidi_remote, F_U64),
    FIELD(initial_max_stream_data_uni, F_U64),
    FIELD(initial_max_streams_bidi, F_U64),
    FIELD(initial_max_streams_uni, F_U64),
    FIELD(max_recv_udp_payload_size, F_SIZE),
    FIELD(max_send_udp_payload_size, F_SIZE),
    FIELD(disable_active_migration, F_BOOL),
    FIELD(enable_pmtud, F_BOOL),
    FIELD(enable_pacing, F_BOOL),
    FIELD(cc_algorithm, F_STR),
    FIELD(grease, F_BOOL),
    FIELD(alpn, F_STR),
    FIELD(qpack_max_table_capacity, F_U64),
    FIELD(qpack_blocked_streams, F_U64),
    FIELD(max_connections, F_SIZE),
    FIELD(recv_batch, F_SIZE),
    FIELD(max_active_requests_per_conn, F_SIZE),
    FIELD(max_request_resets_per_sec, F_SIZE),
    FIELD(max_header_count, F_SIZE),
    FIELD(max_header_name_length, F_SIZE),
    FIELD(max_header_value_length, F_SIZE),
    FIELD(max_request_headers_size, F_SIZE),
    FIELD(max_path_length, F_SIZE),
    FIELD(max_request_body_size, F_U64),
    FIELD(request_header_timeout_ms, F_U64),
    FIELD(body_idle_timeout_ms, F_U64),
    FIELD(drain_timeout_ms, F_U64),
    FIELD(enable_early_data, F_BOOL),
    FIELD(ticket_key, F_KEY),
    FIELD(enable_extended_connect, F_BOOL),
    FIELD(enable_dgram, F_BOOL),
    FIELD(dgram_recv_queue_len, F_SIZE),
    FIELD(dgram_send_queue_len, F_SIZE),
    FIELD(dgram_max_payload_size, F_SIZE),
    FIELD(enable_h3_datagram, F_BOOL),
    FIELD(enable_webtransport, F_BOOL),
    FIELD(wt_max_sessions_per_conn, F_SIZE),
    FIELD(wt_max_streams_per_session, F_SIZE),
    FIELD(enable_retry, F_BOOL),
    FIELD(retry_auto_threshold, F_SIZE),
    FIELD(new_token_lifetime, F_U64),
    FIELD(secret_file, F_STR),
    FIELD(client_ca_path, F_STR),
    FIELD(client_cert_required, F_BOOL),
    FIELD(qlog_dir, F_STR),
    FIELD(keylog_path, F_STR),
    FIELD(log_level, F_LOG),
    FIELD(log_format, F_LOGFMT),
    FIELD(access_log_path, F_STR),
    FIELD(metrics_addr, F_STR),
    FIELD(recv_buffer_size, F_SIZE),
    FIELD(send_buffer_size, F_SIZE),
    FIELD(max_active_downloads_per_conn, F_SIZE),
    FIELD(loop_backend, F_LOOP),
    FIELD(udp_single_syscalls, F_BOOL),
    FIELD(steering, F_STEER),
    FIELD(quic_lb_config_id, F_U32),
    FIELD(quic_lb_server_id, F_STR),
    FIELD(quic_lb_nonce_len, F_SIZE),
    FIELD(workers, F_WORKERS),
};

#define TICKET_KEY_LEN 48

/* What h3q_config_set copied: strings (one slot per field) and the key. */
typedef struct config_store {
  char *strings[sizeof fields / sizeof fields[0]];
  uint8_t ticket_key[TICKET_KEY_LEN];
} config_store;

static const field_def *find_field(const char *name) {
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (strcmp(fields[i].name, name) == 0)
      return &fields[i];
  return NULL;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (!*s || *s == '-' || *s == '+' || *s == ' ')
    return H3Q_ECONFIG;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max)
    return H3Q_ECONFIG;
  *out = (uint64_t)v;
  return H3Q_OK;
}

static int parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0)
      return *out = true, H3Q_OK;
    if (strcasecmp(s, no[i]) == 0)
      return *out = false, H3Q_OK;
  }
  return H3Q_ECONFIG;
}

static int parse_log(const char *s, h3q_log_level *out) {
  static const char *const names[] = {"error", "warn", "info", "debug",
                                      "trace"};
  for (int i = 0; i < 5; i++)
    if (strcasecmp(s, names[i]) == 0)
      return *out = (h3q_log_level)i, H3Q_OK;
  return H3Q_ECONFIG;
}

static int parse_loop(const char *s, h3q_loop_backend *out) {
  if (strcasecmp(s, "libev") == 0)
    return *out = H3Q_LOOP_LIBEV, H3Q_OK;
  if (strcasecmp(s, "epoll") == 0)
    return *out = H3Q_LOOP_EPOLL, H3Q_OK;
  return H3Q_ECONFIG;
}

static int parse_log_format(const char *s, h3q_log_format *out) {
  if (strcasecmp(s, "text") == 0)
    return *out = H3Q_LOG_TEXT, H3Q_OK;
  if (strcasecmp(s, "json") == 0)
    return *out = H3Q_LOG_JSON, H3Q_OK;
  return H3Q_ECONFIG;
}

static int parse_steering(const char *s, h3q_steering *out) {
  static const char *const names[] = {"auto", "ebpf", "handoff"};
  for (int i = 0; i < 3; i++)
    if (strcasecmp(s, names[i]) == 0)
      return *out = (h3q_steering)i, H3Q_OK;
  return H3Q_ECONFIG;
}

static int parse_key(const char *s, uint8_t key[TICKET_KEY_LEN]) {
  size_t len = strlen(s), got = 0;
  const char *end = NULL;
  if (len != 2 * TICKET_KEY_LEN ||
      sodium_hex2bin(key, TICKET_KEY_LEN, s, len, NULL, &got, &end) != 0 ||
      got != TICKET_KEY_LEN || *end != '\0')
    return H3Q_ECONFIG;
  return H3Q_OK;
}

/* "auto" is the number of online CPUs, capped to what a server runs;
 * numbers are range-checked by the server (the message names the field). */
static int parse_workers(const char *s, uint32_t *out) {
  if (strcasecmp(s, "auto") != 0) {
    uint64_t v;
    int rc = parse_u64(s, UINT32_MAX, &v);
    if (rc == H3Q_OK)
      *out = (uint32_t)v;
    return rc;
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  *out = cpus < 1                 ? 1
         : cpus > H3Q_WORKERS_MAX ? H3Q_WORKERS_MAX
                                  : (uint32_t)cpus;
  return H3Q_OK;
}

static config_store *store_of(h3q_config *cfg) {
  if (!cfg->internal)
    cfg->internal = calloc(1, sizeof(config_store));
  return cfg->internal;
}

static int set_string(h3q_config *cfg, const field_def *f, const char *value) {
  config_store *st = store_of(cfg);
  char *copy = strdup(value);
  if (!st || !copy) {
    free(copy);
    return H3Q_ENOMEM;
  }
  size_t slot = (size_t)(f - fields);
  free(st->strings[slot]);
  st->strings[slot] = copy;
  memcpy((char *)cfg + f->offset, &copy, sizeof copy);
  return H3Q_OK;
}

static int set_number(h3q_config *cfg, const field_def *f, const char *value) {
  uint64_t max = f->kind == F_U32    ? UINT32_MAX
                 : f->kind == F_SIZE ? SIZE_MAX
                                     : UINT64_MAX;
  uint64_t v;
  int rc = parse_u64(value, max, &v);
  if (rc != H3Q_OK)
    return rc;
  void *at = (char *)cfg + f->offset;
  if (f->kind == F_U32)
    *(uint32_t *)at = (uint32_t)v;
  else if (f->kind == F_SIZE)
    *(size_t *)at = (size_t)v;
  else
    *(uint64_t *)at = v;
  return H3Q_OK;
}

int h3q_config_set(h3q_config *cfg, const char *name, const char *value) {
  if (!cfg || !name || !value)
    return H3Q_EINVAL;
  const field_def *f = find_field(name);
  if (!f)
    return H3Q_EINVAL;
  switch (f->kind) {
  case F_STR:
    return set_string(cfg, f, value);
  case F_BOOL:
    return parse_bool(value, (bool *)((char *)cfg + f->offset));
  case F_LOG:
    return parse_log(value, &cfg->log_level);
  case F_LOOP:
    return parse_loop(value, &cfg->loop_backend);
  case F_LOGFMT:
    return parse_log_format(value, &cfg->log_format);
  case F_WORKERS:
    return parse_workers(value, &cfg->workers);
  case F_STEER:
    return parse_steering(value, &cfg->steering);
  case F_KEY: {
    config_store *st = store_of(cfg);
    if (!st)
      return H3Q_ENOMEM;
    int rc = parse_key(value, st->ticket_key);
    if (rc == H3Q_OK) {
      cfg->ticket_key = st->ticket_key;
      cfg->ticket_key_len = TICKET_KEY_LEN;
    }
    return rc;
  }
  default:
    return set_number(cfg, f, value);
  }
}

h3q_config *h3q_config_new(void) {
  h3q_config *cfg = malloc(sizeof *cfg);
  if (cfg)
    h3q_config_init(cfg);
  return cfg;
}

void h3q_config_release(h3q_config *cfg) {
  if (!cfg || !cfg->internal)
    return;
  config_store *st = cfg->internal;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    free(st->strings[i]);
  free(st);
  cfg->internal = NULL;
}

void h3q_config_free(h3q_config *cfg) {
  h3q_config_release(cfg);
  free(cfg);
}
