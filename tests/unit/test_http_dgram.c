/* HTTP Datagrams (RFC 9297) on an in-memory session (h3_pipe.h): the
 * quarter stream id both ways, unknown and closed streams dropped and
 * counted, H3_DATAGRAM_ERROR for a missing or too large id, and the
 * Capsule Protocol on a request stream (DATAGRAM capsules in, a DATAGRAM
 * capsule out when the client has no H3_DATAGRAM, a truncated capsule
 * making the message malformed). */
#include "dgram/capsule.h"
#include "dgram/dgram.h"
#include "h3_pipe.h"
#include "util/varint.h"

static dgram_ctx g_dgram;
static int g_datagrams;

static void echo_datagram(h3q_request *req, const uint8_t *p, size_t len,
                          void *user) {
  (void)user;
  g_datagrams++;
  CHECK(h3q_response_send_datagram(h3q_request_response(req), p, len) ==
        H3Q_OK);
}

static void discard(h3q_request *req, const uint8_t *p, size_t n, void *u) {
  (void)req, (void)p, (void)n, (void)u;
}
static void end_response(h3q_request *req, void *u) {
  (void)u;
  h3q_response_end(h3q_request_response(req));
}

/* Echoes the request's datagrams; ends when the client ends. */
static void on_request(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  CHECK(h3q_request_on_datagram(req, echo_datagram, NULL) == H3Q_OK);
  if (!h3q_request_uses_capsules(req))
    h3q_request_on_body(req, discard, end_response, NULL);
  CHECK(h3q_response_write(res, NULL, 0) == 0); /* the header section */
}

static void setup(pipe_ctx *p, bool client_h3_datagram) {
  CHECK(pipe_init(p) == 0);
  quiche_config_enable_dgram(p->ccfg, true, 64, 64);
  quiche_config_enable_dgram(p->scfg, true, 64, 64);
  h3q_config pub;
  h3q_config_init(&pub);
  pub.enable_dgram = true;
  pub.enable_h3_datagram = true;
  h3_config_init(&p->cfg, &pub);
  p->cfg.on_request = on_request;
  p->cfg.stats = &p->stats;
  CHECK(dgram_ctx_init(&g_dgram, &p->cfg, &pub, &p->stats) == H3Q_OK);
  pipe_start(p);
  h3_settings s;
  h3_settings_init(&s);
  s.h3_datagram = client_h3_datagram;
  pipe_client_control(p, &s);
  pipe_run(p);
  g_datagrams = 0;
}

static void teardown(pipe_ctx *p) {
  pipe_free(p);
  dgram_ctx_free(&g_dgram);
}

static void open_request(pipe_ctx *p, uint64_t id, bool capsules) {
  static const char *const plain[] = {":method", "POST",       ":scheme",
                                      "https",   ":authority", "localhost",
                                      ":path",   "/d",         NULL};
  static const char *const capsule[] = {
      ":method", "POST", ":scheme",          "https", ":authority", "localhost",
      ":path",   "/d",   "capsule-protocol", "?1",    NULL};
  buf b = {0};
  pipe_headers_frame(&b, capsules ? capsule : plain);
  pipe_send(p, id, b.data, b.len, false);
  buf_free(&b);
  pipe_run(p);
}

static void client_datagram(pipe_ctx *p, uint64_t quarter, const char *s) {
  uint8_t d[64];
  size_t n = varint_encode(d, sizeof d, quarter);
  memcpy(d + n, s, strlen(s));
  n += strlen(s);
  CHECK(quiche_conn_dgram_send(p->client, d, n) == (ssize_t)n);
}

static void test_settings_announce_h3_datagram(void) {
  pipe_ctx p;
  setup(&p, true);
  buf ctrl = {0};
  pipe_read(&p, 3, &ctrl, NULL);
  h3_settings s;
  h3_settings_init(&s);
  CHECK(ctrl.len > 3 &&
        h3_settings_decode(&s, ctrl.data + 3, ctrl.data[2]) == 0);
  CHECK(s.h3_datagram);
  buf_free(&ctrl);
  teardown(&p);
}

static void test_quic_datagrams(void) {
  pipe_ctx p;
  setup(&p, true);
  open_request(&p, 4, false);
  client_datagram(&p, 1, "ping"); /* stream 4 */
  client_datagram(&p, 2, "lost"); /* stream 8: not open */
  pipe_run(&p);
  CHECK(g_datagrams == 1);
  uint8_t got[64];
  ssize_t n = quiche_conn_dgram_recv(p.client, got, sizeof got);
  CHECK(n == 5 && got[0] == 1 && memcmp(got + 1, "ping", 4) == 0);
  CHECK(p.stats.datagrams_unroutable == 1);
  pipe_send(&p, 4, "", 0, true); /* the request ends; so does the stream */
  pipe_run(&p);
  client_datagram(&p, 1, "late");
  pipe_run(&p);
  CHECK(g_datagrams == 1);
  CHECK(p.stats.datagrams_unroutable == 2);
  CHECK(pipe_close_code(&p) == -1);
  teardown(&p);
}

static int64_t datagram_error_case(const uint8_t *d, size_t len) {
  pipe_ctx p;
  setup(&p, true);
  CHECK(quiche_conn_dgram_send(p.client, d, len) == (ssize_t)len);
  pipe_run(&p);
  int64_t code = pipe_close_code(&p);
  teardown(&p);
  return code;
}

static void test_datagram_errors(void) {
  uint8_t d[16] = {0};
  CHECK(datagram_error_case(d, 0) == H3Q_H3_DATAGRAM_ERROR);
  size_t n = varint_encode(d, sizeof d, UINT64_C(1) << 60);
  CHECK(datagram_error_case(d, n) == H3Q_H3_DATAGRAM_ERROR);
  n = varint_encode(d, sizeof d, (UINT64_C(1) << 60) - 1);
  CHECK(datagram_error_case(d, n) == -1); /* largest id: only unroutable */
}

static void append_capsule(buf *b, uint64_t type, const char *v) {
  uint8_t hdr[16];
  buf_append(b, hdr, capsule_header_encode(hdr, type, strlen(v)));
  buf_append(b, v, strlen(v));
}

/* DATA frames of the response, concatenated; true when FIN was read. */
static bool response_body(pipe_ctx *p, uint64_t id, buf *body,
                          uint64_t *reset) {
  buf raw = {0};
  bool fin = pipe_read(p, id, &raw, reset);
  size_t off = 0;
  while (off < raw.len) {
    uint64_t type, len;
    ssize_t a = varint_decode(raw.data + off, raw.len - off, &type);
    ssize_t b = a < 0 ? -1
                      : varint_decode(raw.data + off + (size_t)a,
                                      raw.len - off - (size_t)a, &len);
    if (a < 0 || b < 0 || off + (size_t)(a + b) + len > raw.len)
      break;
    off += (size_t)(a + b);
    if (type == H3_FRAME_DATA)
      buf_append(body, raw.data + off, (size_t)len);
    off += (size_t)len;
  }
  buf_free(&raw);
  return fin;
}

static void test_capsules(void) {
  pipe_ctx p;
  setup(&p, false); /* the client has no H3_DATAGRAM: capsules both ways */
  open_request(&p, 0, true);
  buf caps = {0}, data = {0};
  append_capsule(&caps, 0x29, "skip"); /* unknown type */
  append_capsule(&caps, CAPSULE_DATAGRAM, "abc");
  h3_frame_write_header(&data, H3_FRAME_DATA, caps.len - 2);
  buf_append(&data, caps.data, caps.len - 2); /* split inside the capsule */
  h3_frame_write_header(&data, H3_FRAME_DATA, 2);
  buf_append(&data, caps.data + caps.len - 2, 2);
  pipe_send(&p, 0, data.data, data.len, false);
  pipe_run(&p);
  CHECK(g_datagrams == 1);
  pipe_send(&p, 0, "", 0, true);
  pipe_run(&p);
  buf body = {0};
  CHECK(response_body(&p, 0, &body, NULL)); /* ended with the request */
  buf want = {0};
  append_capsule(&want, CAPSULE_DATAGRAM, "abc");
  CHECK(body.len == want.len && memcmp(body.data, want.data, want.len) == 0);
  CHECK(p.stats.datagrams_sent == 0); /* no QUIC DATAGRAM was used */
  CHECK(pipe_close_code(&p) == -1);
  buf_free(&want);
  buf_free(&body);
  buf_free(&caps);
  buf_free(&data);
  teardown(&p);
}

static void test_truncated_capsule(void) {
  pipe_ctx p;
  setup(&p, true);
  open_request(&p, 0, true);
  buf data = {0};
  static const uint8_t partial[] = {CAPSULE_DATAGRAM, 10, 'a'};
  h3_frame_write_header(&data, H3_FRAME_DATA, sizeof partial);
  buf_append(&data, partial, sizeof partial);
  pipe_send(&p, 0, data.data, data.len, true);
  pipe_run(&p);
  buf body = {0};
  uint64_t reset = 0;
  response_body(&p, 0, &body, &reset);
  CHECK(reset == H3Q_H3_MESSAGE_ERROR);
  CHECK(pipe_close_code(&p) == -1);
  buf_free(&body);
  buf_free(&data);
  teardown(&p);
}

int main(void) {
  test_settings_announce_h3_datagram();
  test_quic_datagrams();
  test_datagram_errors();
  test_capsules();
  test_truncated_capsule();
  return check_report("test_http_dgram");
}
