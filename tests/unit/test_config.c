/* Config defaults and validation: every rejected field is named. */
#include <string.h>

#include "check.h"
#include "core/config.h"
#include "h3q.h"

static h3q_config valid(void) {
  h3q_config c;
  h3q_config_init(&c);
  c.cert_path = "cert.pem";
  c.key_path = "key.pem";
  return c;
}

/* Validation fails with H3Q_ECONFIG and the message starts with field. */
static void expect_field(const h3q_config *c, const char *field) {
  char err[256] = "";
  CHECK(config_validate(c, err, sizeof err) == H3Q_ECONFIG);
  if (strncmp(err, field, strlen(field)) != 0) {
    fprintf(stderr, "  expected '%s', got '%s'\n", field, err);
    CHECK(0);
  }
}

/* Retry, the server secret and client certificates. */
static void test_ops_fields(void) {
  static const uint8_t secret[32] = {1};
  h3q_config c = valid();
  c.secret = secret;
  c.secret_len = 31;
  expect_field(&c, "secret_len");
  c.secret_len = 32;
  char err[256] = "";
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.secret_file = "/some/file";
  expect_field(&c, "secret_file"); /* both */
  c = valid();
  c.secret_file = "";
  expect_field(&c, "secret_file");
  c = valid();
  c.client_cert_required = true;
  expect_field(&c, "client_cert_required");
  c.client_ca_path = "";
  expect_field(&c, "client_ca_path");
  c.client_ca_path = "ca.pem";
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  /* Files are checked when the server is created. */
  uint8_t *buf = NULL;
  size_t len = 0;
  CHECK(config_load_secret("/nonexistent/secret", &buf, &len, err,
                           sizeof err) == H3Q_ECONFIG);
  CHECK(strncmp(err, "secret_file", 11) == 0 && buf == NULL);
  c = valid();
  c.ticket_key = secret;
  c.ticket_key_len = 32;
  expect_field(&c, "ticket_key_len");

  h3q_config *n = h3q_config_new();
  CHECK(h3q_config_set(n, "enable_retry", "on") == H3Q_OK && n->enable_retry);
  CHECK(h3q_config_set(n, "secret_file", "/s") == H3Q_OK);
  CHECK_STR(n->secret_file, "/s");
  CHECK(h3q_config_set(n, "client_ca_path", "/ca.pem") == H3Q_OK);
  CHECK_STR(n->client_ca_path, "/ca.pem");
  CHECK(h3q_config_set(n, "client_cert_required", "1") == H3Q_OK &&
        n->client_cert_required);
  CHECK(h3q_config_set(n, "enable_retry", "maybe") == H3Q_ECONFIG);
  CHECK(n->retry_auto_threshold == 128); /* the documented default */
  CHECK(h3q_config_set(n, "retry_auto_threshold", "0") == H3Q_OK &&
        n->retry_auto_threshold == 0);
  CHECK(h3q_config_set(n, "retry_auto_threshold", "-1") == H3Q_ECONFIG);
  CHECK(n->new_token_lifetime == 86400); /* the documented default */
  CHECK(h3q_config_set(n, "new_token_lifetime", "0") == H3Q_OK &&
        n->new_token_lifetime == 0);
  CHECK(h3q_config_set(n, "new_token_lifetime", "1h") == H3Q_ECONFIG);
  h3q_config_free(n);
  c = valid();
  c.retry_auto_threshold = 1000000;
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.retry_auto_threshold = 1000001;
  expect_field(&c, "retry_auto_threshold");
  c = valid();
  c.new_token_lifetime = 2592000;
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.new_token_lifetime = 2592001;
  expect_field(&c, "new_token_lifetime");
}

/* Setting fields by name: parsing, copies, errors. */
static void test_config_set(void) {
  h3q_config *c = h3q_config_new();
  CHECK(c != NULL && c->port == 4433 && c->internal == NULL);
  CHECK(h3q_config_set(c, "port", "8443") == H3Q_OK && c->port == 8443);
  CHECK(h3q_config_set(c, "port", "4294967296") == H3Q_ECONFIG);
  CHECK(h3q_config_set(c, "port", "-1") == H3Q_ECONFIG);
  CHECK(h3q_config_set(c, "port", "12x") == H3Q_ECONFIG);
  CHECK(h3q_config_set(c, "port", "") == H3Q_ECONFIG);
  CHECK(h3q_config_set(c, "no_such_field", "1") == H3Q_EINVAL);
  CHECK(h3q_config_set(c, NULL, "1") == H3Q_EINVAL);
  CHECK(h3q_config_set(c, "idle_timeout_ms", "18446744073709551615") == H3Q_OK);
  CHECK(c->idle_timeout_ms == UINT64_MAX);
  CHECK(h3q_config_set(c, "enable_early_data", "yes") == H3Q_OK &&
        c->enable_early_data);
  CHECK(h3q_config_set(c, "grease", "off") == H3Q_OK && !c->grease);
  CHECK(h3q_config_set(c, "grease", "maybe") == H3Q_ECONFIG);
  CHECK(c->loop_backend == H3Q_LOOP_LIBEV); /* the default */
  CHECK(h3q_config_set(c, "loop_backend", "epoll") == H3Q_OK &&
        c->loop_backend == H3Q_LOOP_EPOLL);
  CHECK(h3q_config_set(c, "loop_backend", "libev") == H3Q_OK &&
        c->loop_backend == H3Q_LOOP_LIBEV);
  CHECK(h3q_config_set(c, "loop_backend", "select") == H3Q_ECONFIG);
  CHECK(c->steering == H3Q_STEERING_AUTO); /* the default */
  CHECK(h3q_config_set(c, "steering", "ebpf") == H3Q_OK &&
        c->steering == H3Q_STEERING_EBPF);
  CHECK(h3q_config_set(c, "steering", "handoff") == H3Q_OK &&
        c->steering == H3Q_STEERING_HANDOFF);
  CHECK(h3q_config_set(c, "steering", "auto") == H3Q_OK &&
        c->steering == H3Q_STEERING_AUTO);
  CHECK(h3q_config_set(c, "steering", "hash") == H3Q_ECONFIG);
  CHECK(h3q_config_set(c, "log_level", "DEBUG") == H3Q_OK &&
        c->log_level == H3Q_LOG_DEBUG);
  char path[32] = "/tmp/a.pem";
  CHECK(h3q_config_set(c, "cert_path", path) == H3Q_OK);
  strcpy(path, "/changed");
  CHECK_STR(c->cert_path, "/tmp/a.pem"); /* copied */
  CHECK(h3q_config_set(c, "cert_path", "/tmp/b.pem") == H3Q_OK);
  CHECK_STR(c->cert_path, "/tmp/b.pem");
  char key[97];
  memset(key, 'a', 96);
  key[96] = '\0';
  CHECK(h3q_config_set(c, "ticket_key", key) == H3Q_OK);
  CHECK(c->ticket_key_len == 48 && c->ticket_key[0] == 0xaa);
  key[3] = 'g';
  CHECK(h3q_config_set(c, "ticket_key", key) == H3Q_ECONFIG);
  CHECK(h3q_config_set(c, "ticket_key", "abcd") == H3Q_ECONFIG);
  h3q_config_free(c);
  h3q_config_free(NULL);
  /* A config on the stack: its copies are released separately. */
  h3q_config s;
  h3q_config_init(&s);
  CHECK(h3q_config_set(&s, "qlog_dir", "/tmp") == H3Q_OK);
  CHECK_STR(s.qlog_dir, "/tmp");
  h3q_config_release(&s);
  CHECK(s.internal == NULL);
  h3q_config_release(NULL);
}

int main(void) {
  test_ops_fields();
  test_config_set();
  h3q_config c = valid();
  char err[256];
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  CHECK(c.port == 4433 && c.idle_timeout_ms == 30000);
  CHECK(c.max_header_count == 100 && c.max_path_length == 2048);
  CHECK(c.max_request_body_size == 100u * 1024 * 1024);
  CHECK_STR(c.alpn, "h3");

  c = valid();
  c.port = 0; /* any free port */
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c = valid();
  c.port = 70000;
  expect_field(&c, "port");
  c = valid();
  c.cert_path = NULL;
  expect_field(&c, "cert_path");
  c = valid();
  c.key_path = "";
  expect_field(&c, "key_path");
  c = valid();
  c.bind_addr = "localhost";
  expect_field(&c, "bind_addr");
  c = valid();
  c.bind_addr = "::";
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c = valid();
  c.idle_timeout_ms = 0;
  expect_field(&c, "idle_timeout_ms");
  c = valid();
  c.initial_max_data = 0;
  expect_field(&c, "initial_max_data");
  c = valid();
  c.initial_max_streams_bidi = 0;
  expect_field(&c, "initial_max_streams_bidi");
  c = valid();
  c.initial_max_streams_uni = 2;
  expect_field(&c, "initial_max_streams_uni");
  c = valid();
  c.max_send_udp_payload_size = 1000;
  expect_field(&c, "max_send_udp_payload_size");
  c = valid();
  c.max_recv_udp_payload_size = 70000;
  expect_field(&c, "max_recv_udp_payload_size");
  c = valid();
  c.cc_algorithm = "vegas";
  expect_field(&c, "cc_algorithm");
  c = valid();
  c.alpn = "h3,";
  expect_field(&c, "alpn");
  c = valid();
  c.alpn = "";
  expect_field(&c, "alpn");
  c.alpn = "h3,h2"; /* h3q cannot speak h2 */
  expect_field(&c, "alpn");
  c.alpn = "h3,h3";
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  c.alpn = "h3";
  c.qpack_max_table_capacity = (1u << 20) + 1;
  expect_field(&c, "qpack_max_table_capacity");
  c.qpack_max_table_capacity = 0;
  c.qpack_blocked_streams = 1001;
  expect_field(&c, "qpack_blocked_streams");
  c.qpack_blocked_streams = 16;
  c = valid();
  c.max_connections = 0;
  expect_field(&c, "max_connections");
  c = valid();
  c.recv_batch = 5000;
  expect_field(&c, "recv_batch");
  c = valid();
  c.max_header_count = 0;
  expect_field(&c, "max_header_count");
  c = valid();
  c.max_request_body_size = 0;
  expect_field(&c, "max_request_body_size");
  c = valid();
  c.log_level = (h3q_log_level)9;
  expect_field(&c, "log_level");
  c = valid();
  c.loop_backend = (h3q_loop_backend)7;
  expect_field(&c, "loop_backend");
  c = valid();
  c.steering = (h3q_steering)3;
  expect_field(&c, "steering");

  /* Server creation reports a missing certificate file by field name. */
  c = valid();
  c.cert_path = "/nonexistent/cert.pem";
  h3q_server *srv = NULL;
  CHECK(h3q_server_new(&c, &srv, err, sizeof err) == H3Q_ETLS);
  CHECK(srv == NULL);
  CHECK(strncmp(err, "cert_path", 9) == 0);
  CHECK(h3q_server_new(NULL, &srv, err, sizeof err) == H3Q_EINVAL);
  h3q_server_free(NULL); /* accepts NULL */

  CHECK(h3q_error_to_status(H3Q_ENOTFOUND) == 404);
  CHECK(h3q_error_to_status(H3Q_ETOOLARGE) == 413);
  CHECK(h3q_error_to_status(H3Q_EINTERNAL) == 500);
  CHECK(strcmp(h3q_strerror(12345), "unknown error") == 0);
  return check_report("test_config");
}
