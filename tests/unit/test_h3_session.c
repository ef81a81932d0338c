/* The HTTP/3 session in memory (tests/unit/h3_pipe.h): what the server
 * opens, requests and responses through our frames and QPACK, blocked
 * QPACK sections, RFC 9114 connection errors, and the stream-type
 * registry with a test extension. */
#include "h3_pipe.h"
#include "util/varint.h"

static const char *const GET_ROOT[] = {":method", "GET",        ":scheme",
                                       "https",   ":authority", "localhost",
                                       ":path",   "/",          NULL};

/* Decodes the HEADERS frames of a response stream. */
typedef struct response_view {
  char status[8];
  size_t header_sections;
  buf body;
  char trailer[64];
} response_view;

static int on_field(void *user, const uint8_t *n, size_t nl, const uint8_t *v,
                    size_t vl) {
  response_view *r = user;
  if (nl == 7 && memcmp(n, ":status", 7) == 0 && vl < sizeof r->status)
    memcpy(r->status, v, vl), r->status[vl] = 0;
  if (nl == 8 && memcmp(n, "x-trail1", 8) == 0 && vl < sizeof r->trailer)
    memcpy(r->trailer, v, vl), r->trailer[vl] = 0;
  return 0;
}

static void parse_response(const buf *raw, response_view *r) {
  qpack_decoder *d = qpack_decoder_new(0, 0);
  size_t off = 0;
  while (off < raw->len) {
    uint64_t type, len;
    ssize_t a = varint_decode(raw->data + off, raw->len - off, &type);
    ssize_t b = a < 0 ? -1
                      : varint_decode(raw->data + off + (size_t)a,
                                      raw->len - off - (size_t)a, &len);
    if (a < 0 || b < 0 || off + (size_t)(a + b) + len > raw->len) {
      CHECK(!"truncated response frame");
      break;
    }
    off += (size_t)(a + b);
    uint64_t err = 0;
    if (type == H3_FRAME_HEADERS) {
      CHECK(qpack_decode_section(d, 0, raw->data + off, (size_t)len, 65536,
                                 on_field, r, &err) == QPACK_DONE);
      r->header_sections++;
    } else if (type == H3_FRAME_DATA) {
      buf_append(&r->body, raw->data + off, (size_t)len);
    }
    off += (size_t)len;
  }
  qpack_decoder_free(d);
}

/* Reads and decodes what the server sent on request stream id; returns
 * whether its FIN arrived. The caller frees r->body. */
static bool read_response(pipe_ctx *p, uint64_t id, response_view *r) {
  buf raw = {0};
  bool fin = pipe_read(p, id, &raw, NULL);
  parse_response(&raw, r);
  buf_free(&raw);
  return fin;
}

static void test_server_streams(void) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  pipe_start(&p);
  CHECK(p.h != NULL);
  buf ctrl = {0}, enc = {0}, dec = {0};
  pipe_read(&p, 3, &ctrl, NULL);
  pipe_read(&p, 7, &enc, NULL);
  pipe_read(&p, 11, &dec, NULL);
  CHECK(ctrl.len > 2 && ctrl.data[0] == H3_STREAM_CONTROL &&
        ctrl.data[1] == H3_FRAME_SETTINGS);
  h3_settings s;
  h3_settings_init(&s);
  if (ctrl.len > 3)
    CHECK(h3_settings_decode(&s, ctrl.data + 3, ctrl.data[2]) == 0);
  CHECK(s.qpack_max_table_capacity == 4096);
  CHECK(s.qpack_blocked_streams == 16);
  CHECK(enc.len == 1 && enc.data[0] == H3_STREAM_QPACK_ENCODER);
  CHECK(dec.len == 1 && dec.data[0] == H3_STREAM_QPACK_DECODER);
  buf_free(&ctrl);
  buf_free(&enc);
  buf_free(&dec);
  pipe_free(&p);
}

static void test_get(void) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  pipe_start(&p);
  pipe_client_control(&p, NULL);
  buf req = {0};
  pipe_headers_frame(&req, GET_ROOT);
  /* An unknown (reserved) frame type before FIN is skipped. */
  h3_frame_write_header(&req, 0x21 + 0x1f * 3, 3);
  buf_append(&req, "xyz", 3);
  pipe_send(&p, 0, req.data, req.len, true);
  pipe_run(&p);
  response_view r = {0};
  CHECK(read_response(&p, 0, &r));
  CHECK_STR(r.status, "200");
  CHECK(r.body.len == 3 && memcmp(r.body.data, "ok\n", 3) == 0);
  CHECK(pipe_close_code(&p) == -1);
  CHECK(p.stats.requests == 1);
  buf_free(&r.body);
  buf_free(&req);
  pipe_free(&p);
}

/* Echoes the body length and the x-trail1 request trailer. */
typedef struct echo_state {
  size_t bytes;
} echo_state;
static echo_state echo;

static void echo_data(h3q_request *req, const uint8_t *d, size_t n, void *u) {
  (void)req, (void)d, (void)u;
  echo.bytes += n;
}
static void echo_end(h3q_request *req, void *u) {
  (void)u;
  char body[64];
  const char *t = h3q_request_trailer(req, "x-trail1");
  int n = snprintf(body, sizeof body, "%zu %s", echo.bytes, t ? t : "-");
  h3q_response *res = h3q_request_response(req);
  h3q_response_trailer(res, "x-trail1", "back");
  h3q_response_send(res, 200, "text/plain", body, (size_t)n);
}
static void echo_request(h3q_request *req, h3q_response *res, void *user) {
  (void)res, (void)user;
  echo.bytes = 0;
  h3q_request_on_body(req, echo_data, echo_end, NULL);
}

static void test_body_and_trailers(void) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  p.cfg.on_request = echo_request;
  pipe_start(&p);
  pipe_client_control(&p, NULL);
  static const char *const post[] = {":method", "POST",       ":scheme",
                                     "https",   ":authority", "localhost",
                                     ":path",   "/echo",      NULL};
  static const char *const trailers[] = {"x-trail1", "yes", NULL};
  buf req = {0};
  pipe_headers_frame(&req, post);
  for (int i = 0; i < 5; i++) {
    h3_frame_write_header(&req, H3_FRAME_DATA, 1000);
    for (int j = 0; j < 1000; j++)
      buf_append_byte(&req, (uint8_t)j);
    h3_frame_write_header(&req, 0x21, 0); /* reserved, empty */
  }
  h3_frame_write_header(&req, H3_FRAME_DATA, 0); /* empty DATA is fine */
  pipe_headers_frame(&req, trailers);
  pipe_send(&p, 0, req.data, req.len, true);
  pipe_run(&p);
  response_view r = {0};
  CHECK(read_response(&p, 0, &r));
  CHECK_STR(r.status, "200");
  buf_append_byte(&r.body, 0);
  CHECK_STR((const char *)r.body.data, "5000 yes");
  CHECK(r.header_sections == 2);
  CHECK_STR(r.trailer, "back");
  buf_free(&r.body);
  buf_free(&req);
  pipe_free(&p);
}

/* A section that needs a dynamic-table insert waits for it (blocked),
 * then decodes, and the server acknowledges it on its decoder stream. */
static void test_blocked_section(void) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  pipe_start(&p);
  pipe_client_control(&p, NULL);
  /* Required Insert Count 1 (encoded 2 with 128 max entries), Base 1,
   * the pseudo-headers from the static table, then dynamic entry 0. */
  buf q = {0};
  buf_append(&q, "\x02\x00", 2);
  for (size_t i = 0; GET_ROOT[i]; i += 2)
    qpack_encode_field(&q, (const uint8_t *)GET_ROOT[i], strlen(GET_ROOT[i]),
                       (const uint8_t *)GET_ROOT[i + 1],
                       strlen(GET_ROOT[i + 1]));
  buf_append_byte(&q, 0x80);
  buf req = {0};
  h3_frame_write_header(&req, H3_FRAME_HEADERS, q.len);
  buf_append(&req, q.data, q.len);
  pipe_send(&p, 0, req.data, req.len, true);
  pipe_run(&p);
  buf raw = {0};
  CHECK(!pipe_read(&p, 0, &raw, NULL)); /* blocked: no response yet */
  CHECK(p.stats.requests == 0);
  /* Encoder stream: capacity 4096 (001 + 5-bit prefix 31, then 4065),
   * then Insert With Literal Name "x-dyn: v". */
  static const uint8_t ins[] = {0x02, 0x3f, 0xe1, 0x1f, 0x45, 'x',
                                '-',  'd',  'y',  'n',  0x01, 'v'};
  pipe_send(&p, 6, ins, sizeof ins, false);
  pipe_run(&p);
  response_view r = {0};
  CHECK(read_response(&p, 0, &r));
  CHECK_STR(r.status, "200");
  buf dec = {0};
  pipe_read(&p, 11, &dec, NULL);
  bool acked = false;
  for (size_t i = 1; i < dec.len; i++)
    acked = acked || dec.data[i] == 0x80; /* Section Acknowledgment, id 0 */
  CHECK(acked);
  CHECK(pipe_close_code(&p) == -1);
  buf_free(&dec);
  buf_free(&r.body);
  buf_free(&raw);
  buf_free(&req);
  buf_free(&q);
  pipe_free(&p);
}

typedef void (*scenario)(pipe_ctx *p);

static int64_t run_scenario(scenario fn) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  p.cfg.on_request = echo_request; /* reads bodies to their end */
  pipe_start(&p);
  fn(&p);
  pipe_run(&p);
  int64_t code = pipe_close_code(&p);
  pipe_free(&p);
  return code;
}

static void data_before_headers(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  buf b = {0};
  h3_frame_write_header(&b, H3_FRAME_DATA, 1);
  buf_append_byte(&b, 'x');
  pipe_send(p, 0, b.data, b.len, false);
  buf_free(&b);
}
static void first_not_settings(pipe_ctx *p) {
  static const uint8_t b[] = {H3_STREAM_CONTROL, H3_FRAME_GOAWAY, 1, 0};
  pipe_send(p, 2, b, sizeof b, false);
}
static void second_settings(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  static const uint8_t b[] = {H3_FRAME_SETTINGS, 0};
  pipe_send(p, 2, b, sizeof b, false);
}
static void two_control_streams(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  static const uint8_t b[] = {H3_STREAM_CONTROL, H3_FRAME_SETTINGS, 0};
  pipe_send(p, 6, b, sizeof b, false);
}
static void control_closed(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  pipe_send(p, 2, "", 0, true);
}
static void fin_inside_frame(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  buf b = {0};
  pipe_headers_frame(&b, GET_ROOT);
  h3_frame_write_header(&b, H3_FRAME_DATA, 10);
  buf_append(&b, "abc", 3);
  pipe_send(p, 0, b.data, b.len, true);
  buf_free(&b);
}
static void priority_update_uni(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  buf b = {0};
  h3_frame_write_header(&b, H3_FRAME_PRIORITY_UPDATE_REQUEST, 1 + 3);
  buf_append_byte(&b, 2); /* a unidirectional stream id */
  buf_append(&b, "u=1", 3);
  pipe_send(p, 2, b.data, b.len, false);
  buf_free(&b);
}
static void duplicate_setting(pipe_ctx *p) {
  static const uint8_t b[] = {
      H3_STREAM_CONTROL, H3_FRAME_SETTINGS, 4, 0x06, 0x10, 0x06, 0x11};
  pipe_send(p, 2, b, sizeof b, false);
}
static void http2_setting(pipe_ctx *p) {
  static const uint8_t b[] = {H3_STREAM_CONTROL, H3_FRAME_SETTINGS, 2, 0x04,
                              0x10};
  pipe_send(p, 2, b, sizeof b, false);
}
static void push_stream(pipe_ctx *p) {
  static const uint8_t b[] = {H3_STREAM_PUSH, 0};
  pipe_send(p, 2, b, sizeof b, false);
}
static void http2_frame_on_request(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  static const uint8_t b[] = {0x06, 0}; /* HTTP/2 PING type */
  pipe_send(p, 0, b, sizeof b, false);
}
static void goaway_increases(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  buf b = {0};
  h3_frame_write_varint_frame(&b, H3_FRAME_GOAWAY, 4);
  h3_frame_write_varint_frame(&b, H3_FRAME_GOAWAY, 8);
  pipe_send(p, 2, b.data, b.len, false);
  buf_free(&b);
}
static void unknown_stream_and_frames(pipe_ctx *p) {
  pipe_client_control(p, NULL);
  buf b = {0};
  h3_frame_write_header(&b, 0x21 + 0x1f, 2); /* reserved frame on control */
  buf_append(&b, "zz", 2);
  pipe_send(p, 2, b.data, b.len, false);
  static const uint8_t reserved_stream[] = {0x21, 'a', 'b'};
  pipe_send(p, 6, reserved_stream, sizeof reserved_stream, true);
  buf_free(&b);
}

static void test_connection_errors(void) {
  CHECK(run_scenario(data_before_headers) == H3Q_H3_FRAME_UNEXPECTED);
  CHECK(run_scenario(first_not_settings) == H3Q_H3_MISSING_SETTINGS);
  CHECK(run_scenario(second_settings) == H3Q_H3_FRAME_UNEXPECTED);
  CHECK(run_scenario(two_control_streams) == H3Q_H3_STREAM_CREATION_ERROR);
  CHECK(run_scenario(control_closed) == H3Q_H3_CLOSED_CRITICAL_STREAM);
  CHECK(run_scenario(fin_inside_frame) == H3Q_H3_FRAME_ERROR);
  CHECK(run_scenario(priority_update_uni) == H3Q_H3_ID_ERROR);
  CHECK(run_scenario(duplicate_setting) == H3Q_H3_SETTINGS_ERROR);
  CHECK(run_scenario(http2_setting) == H3Q_H3_SETTINGS_ERROR);
  CHECK(run_scenario(push_stream) == H3Q_H3_STREAM_CREATION_ERROR);
  CHECK(run_scenario(http2_frame_on_request) == H3Q_H3_FRAME_UNEXPECTED);
  CHECK(run_scenario(goaway_increases) == H3Q_H3_ID_ERROR);
  CHECK(run_scenario(unknown_stream_and_frames) == -1);
}

/* A test extension: claims uni type 0x54 and bidi first frame 0x41,
 * counts what it reads, and answers on the bidi stream. */
typedef struct ext_state {
  int uni_claims, bidi_claims;
  size_t uni_bytes, bidi_bytes;
  bool saw_fin;
} ext_state;

static uint64_t ext_on_stream(h3_session *h, uint64_t id, void *user) {
  ext_state *e = user;
  (void)h;
  if (id & 2)
    e->uni_claims++;
  else
    e->bidi_claims++;
  return 0;
}

static void ext_on_readable(h3_session *h, uint64_t id, void *user) {
  ext_state *e = user;
  uint8_t tmp[256];
  for (int i = 0; i < 16; i++) {
    bool fin = false;
    uint64_t code = 0;
    ssize_t n = quiche_conn_stream_recv(h3_session_quiche(h), id, tmp,
                                        sizeof tmp, &fin, &code);
    if (n < 0)
      return;
    if (id & 2)
      e->uni_bytes += (size_t)n;
    else
      e->bidi_bytes += (size_t)n;
    if (fin) {
      e->saw_fin = true;
      if (!(id & 2))
        quiche_conn_stream_send(h3_session_quiche(h), id,
                                (const uint8_t *)"pong", 4, true, &code);
    }
  }
}

static void test_extension_registry(void) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  ext_state st = {0};
  h3_extension uni = {.type = 0x54,
                      .bidi = false,
                      .on_stream = ext_on_stream,
                      .on_readable = ext_on_readable,
                      .user = &st};
  h3_extension bidi = uni;
  bidi.type = 0x41;
  bidi.bidi = true;
  CHECK(h3_config_add_extension(&p.cfg, &uni) == H3Q_OK);
  CHECK(h3_config_add_extension(&p.cfg, &bidi) == H3Q_OK);
  CHECK(h3_config_add_extension(&p.cfg, &bidi) == H3Q_EEXIST);
  h3_extension own = uni;
  own.type = H3_STREAM_CONTROL;
  CHECK(h3_config_add_extension(&p.cfg, &own) == H3Q_EINVAL);
  pipe_start(&p);
  pipe_client_control(&p, NULL);
  static const uint8_t u[] = {0x40, 0x54, 0x00, 'h', 'e', 'l', 'l', 'o'};
  pipe_send(&p, 6, u, sizeof u, true);
  static const uint8_t b[] = {0x40, 0x41, 0x00, 'p', 'i', 'n', 'g'};
  pipe_send(&p, 0, b, sizeof b, true);
  /* A normal request still works next to them. */
  buf req = {0};
  pipe_headers_frame(&req, GET_ROOT);
  pipe_send(&p, 4, req.data, req.len, true);
  pipe_run(&p);
  CHECK(st.uni_claims == 1 && st.bidi_claims == 1);
  CHECK(st.uni_bytes == 6);  /* session id 0 and "hello" */
  CHECK(st.bidi_bytes == 5); /* session id 0 and "ping" */
  buf raw = {0};
  CHECK(pipe_read(&p, 0, &raw, NULL));
  CHECK(raw.len == 4 && memcmp(raw.data, "pong", 4) == 0);
  response_view r = {0};
  CHECK(read_response(&p, 4, &r));
  CHECK_STR(r.status, "200");
  CHECK(p.stats.requests == 1);
  CHECK(pipe_close_code(&p) == -1);
  buf_free(&r.body);
  buf_free(&raw);
  buf_free(&req);
  pipe_free(&p);
}

/* A PRIORITY_UPDATE that arrives before its request's HEADERS applies
 * once they arrive (RFC 9218 section 7.2). */
static uint8_t seen_urgency = 255;
static bool seen_incremental;
static void note_priority(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  h3q_request_priority(req, &seen_urgency, &seen_incremental);
  h3q_response_send(res, 204, NULL, NULL, 0);
}

static void test_early_priority_update(void) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  p.cfg.on_request = note_priority;
  pipe_start(&p);
  pipe_client_control(&p, NULL);
  buf b = {0};
  h3_frame_write_header(&b, H3_FRAME_PRIORITY_UPDATE_REQUEST, 1 + 5);
  buf_append_byte(&b, 8); /* request stream 8, not open yet */
  buf_append(&b, "u=1,i", 5);
  pipe_send(&p, 2, b.data, b.len, false);
  pipe_run(&p);
  b.len = 0;
  pipe_headers_frame(&b, GET_ROOT);
  pipe_send(&p, 8, b.data, b.len, true);
  pipe_run(&p);
  CHECK(seen_urgency == 1 && seen_incremental);
  CHECK(pipe_close_code(&p) == -1);
  buf_free(&b);
  pipe_free(&p);
}

/* A HEADERS frame larger than anything h3q buffers is answered with 431
 * unread, and the connection goes on. */
static void test_huge_headers_frame(void) {
  pipe_ctx p;
  CHECK(pipe_init(&p) == 0);
  pipe_start(&p);
  pipe_client_control(&p, NULL);
  static char big[40000];
  memset(big, 'v', sizeof big - 1);
  const char *fields[] = {":method",    "GET",       ":scheme", "https",
                          ":authority", "localhost", ":path",   "/",
                          "x-big",      big,         NULL};
  buf req = {0};
  pipe_headers_frame(&req, fields);
  CHECK(req.len > p.cfg.max_headers_frame);
  pipe_send(&p, 0, req.data, req.len, true);
  pipe_run(&p);
  response_view r = {0};
  read_response(&p, 0, &r); /* FIN or not: the request body was refused */
  CHECK_STR(r.status, "431");
  req.len = 0;
  pipe_headers_frame(&req, GET_ROOT);
  pipe_send(&p, 4, req.data, req.len, true);
  pipe_run(&p);
  response_view ok = {0};
  CHECK(read_response(&p, 4, &ok));
  CHECK_STR(ok.status, "200");
  CHECK(pipe_close_code(&p) == -1);
  buf_free(&r.body);
  buf_free(&ok.body);
  buf_free(&req);
  pipe_free(&p);
}

int main(void) {
  test_huge_headers_frame();
  test_early_priority_update();
  test_server_streams();
  test_get();
  test_body_and_trailers();
  test_blocked_section();
  test_connection_errors();
  test_extension_registry();
  return check_report("test_h3_session");
}
