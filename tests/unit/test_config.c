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

int main(void) {
  h3q_config c = valid();
  char err[256];
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  CHECK(c.port == 4433 && c.idle_timeout_ms == 30000);
  CHECK(c.max_header_count == 100 && c.max_path_length == 2048);
  CHECK(c.max_request_body_size == 100u * 1024 * 1024);
  CHECK_STR(c.alpn, "h3");

  c = valid();
  c.port = 0;
  expect_field(&c, "port");
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
