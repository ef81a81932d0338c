/* Observability pieces without a network: the log callback and JSON
 * escaping, the metrics listener's request-head parser, the new config
 * fields and their validation (metrics_addr's form: test_addr), and the metrics
 * text of a fresh server (through the public API). */
#include <string.h>

#include "check.h"
#include "core/config.h"
#include "h3q.h"
#include "io/http_listen.h"
#include "util/log.h"

typedef struct seen {
  int calls;
  h3q_log_level level;
  char msg[256];
} seen;

static void on_log(h3q_log_level level, const char *message, void *user) {
  seen *s = user;
  s->calls++;
  s->level = level;
  snprintf(s->msg, sizeof s->msg, "%s", message);
}

static void test_log_callback(void) {
  seen s = {0};
  h3q_log_set_callback(on_log, &s);
  h3q_log_set_level(H3Q_LOG_INFO);
  LOG_WARN("disk %s at %d%%", "full", 99);
  CHECK(s.calls == 1 && s.level == H3Q_LOG_WARN);
  CHECK_STR(s.msg, "disk full at 99%");
  LOG_DEBUG("below the level");
  CHECK(s.calls == 1);
  LOG_INFO("info");
  CHECK(s.calls == 2 && s.level == H3Q_LOG_INFO);
  h3q_log_set_level(H3Q_LOG_WARN);
  LOG_INFO("filtered again");
  CHECK(s.calls == 2);
  h3q_log_set_callback(NULL, NULL); /* back to stderr */
  LOG_ERROR("to stderr (expected in the test output)");
  CHECK(s.calls == 2);
}

static void test_json_escape(void) {
  char out[64];
  CHECK(log_json_escape(out, sizeof out, "a\"b\\c\nd\x01") == 20);
  CHECK_STR(out, "a\\\"b\\\\c\\u000ad\\u0001");
  /* Cut at a whole escaped character. */
  char small[4];
  log_json_escape(small, sizeof small, "ab\"cd");
  CHECK_STR(small, "ab");
  char t[40];
  CHECK(log_format_time(t, sizeof t, true) == 24 && t[23] == 'Z');
  CHECK(log_format_time(t, 5, true) == 0);
}

static void test_http_head(void) {
  char m[16], p[64];
  const char *ok = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
  CHECK(http_parse_head(ok, strlen(ok), m, sizeof m, p, sizeof p) == 1);
  CHECK_STR(m, "GET");
  CHECK_STR(p, "/metrics");
  const char *bare = "HEAD / HTTP/1.0\n\n";
  CHECK(http_parse_head(bare, strlen(bare), m, sizeof m, p, sizeof p) == 1);
  CHECK_STR(m, "HEAD");
  CHECK_STR(p, "/");
  const char *partial = "GET /metrics HTTP/1.1\r\nHost:";
  CHECK(http_parse_head(partial, strlen(partial), m, sizeof m, p, sizeof p) ==
        0);
  const char *const bad[] = {
      "GET metrics HTTP/1.1\r\n\r\n",
      " /x HTTP/1.1\r\n\r\n",
      "GET /x\r\n\r\n",
      "GET /x SPDY/3\r\n\r\n",
      "VERYLONGMETHODNAME /x HTTP/1.1\r\n\r\n",
      "get /x HTTP/1.1\r\n\r\n",
      "GET /a\tb HTTP/1.1\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(http_parse_head(bad[i], strlen(bad[i]), m, sizeof m, p, sizeof p) ==
          -1);
  char big[HTTP_LISTEN_HEAD_MAX];
  memset(big, 'a', sizeof big);
  CHECK(http_parse_head(big, sizeof big, m, sizeof m, p, sizeof p) == -1);
  char longpath[200] = "GET /";
  memset(longpath + 5, 'p', 100);
  strcpy(longpath + 105, " HTTP/1.1\r\n\r\n");
  CHECK(http_parse_head(longpath, strlen(longpath), m, sizeof m, p, sizeof p) ==
        -1);
}

static void expect_field(const h3q_config *c, const char *field) {
  char err[256] = "";
  CHECK(config_validate(c, err, sizeof err) == H3Q_ECONFIG);
  if (strncmp(err, field, strlen(field)) != 0) {
    fprintf(stderr, "  expected '%s', got '%s'\n", field, err);
    CHECK(0);
  }
}

static void test_config_fields(void) {
  h3q_config *c = h3q_config_new();
  c->cert_path = "c.pem";
  c->key_path = "k.pem";
  CHECK(c->log_format == H3Q_LOG_TEXT && c->recv_buffer_size == 0 &&
        c->max_active_downloads_per_conn == 0 && !c->udp_single_syscalls);
  CHECK(h3q_config_set(c, "log_format", "json") == H3Q_OK &&
        c->log_format == H3Q_LOG_JSON);
  CHECK(h3q_config_set(c, "log_format", "yaml") == H3Q_ECONFIG);
  CHECK(h3q_config_set(c, "metrics_addr", "127.0.0.1:0") == H3Q_OK);
  CHECK(h3q_config_set(c, "access_log_path", "-") == H3Q_OK);
  CHECK(h3q_config_set(c, "recv_buffer_size", "65536") == H3Q_OK);
  CHECK(h3q_config_set(c, "send_buffer_size", "65536") == H3Q_OK);
  CHECK(h3q_config_set(c, "max_active_downloads_per_conn", "4") == H3Q_OK);
  CHECK(h3q_config_set(c, "udp_single_syscalls", "on") == H3Q_OK);
  char err[256];
  CHECK(config_validate(c, err, sizeof err) == H3Q_OK);

  h3q_config v = *c;
  v.recv_buffer_size = 2047;
  expect_field(&v, "recv_buffer_size");
  v = *c;
  v.send_buffer_size = (1u << 30) + 1;
  expect_field(&v, "send_buffer_size");
  v = *c;
  v.max_active_downloads_per_conn = 1000001;
  expect_field(&v, "max_active_downloads_per_conn");
  v = *c;
  v.metrics_addr = "localhost:9100";
  expect_field(&v, "metrics_addr");
  v = *c;
  v.access_log_path = "";
  expect_field(&v, "access_log_path");
  v = *c;
  v.keylog_path = "";
  expect_field(&v, "keylog_path");
  v = *c;
  v.log_format = (h3q_log_format)7;
  expect_field(&v, "log_format");
  h3q_config_free(c);
}

static void test_stats_and_metrics_api(void) {
  CHECK(h3q_server_get_stats(NULL, NULL, 0) == 0);
  CHECK(h3q_server_metrics_port(NULL) == 0);
  char buf[8];
  CHECK(h3q_server_metrics_text(NULL, buf, sizeof buf) == H3Q_EINVAL);
  h3q_conn_stats cs;
  CHECK(h3q_request_conn_stats(NULL, &cs, sizeof cs) == H3Q_EINVAL);
}

int main(void) {
  test_log_callback();
  test_json_escape();
  test_http_head();
  test_config_fields();
  test_stats_and_metrics_api();
  return check_report("test_observe");
}
