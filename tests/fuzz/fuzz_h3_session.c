/* A whole HTTP/3 session (src/h3, as h3q-server runs it through
 * h3_app_ops) fed the decrypted stream bytes of one client connection:
 * control, QPACK encoder/decoder and request streams, in any order and
 * cut anywhere, with resets, STOP_SENDING, tight send capacity, time
 * passing and a graceful close. quiche is replaced by fake_quiche.c (no
 * packets, no crypto), so every input runs in microseconds.
 *
 * Input: a sequence of operations, each an op byte and its arguments.
 *   kind = op >> 5, slot = op & 0x0f (streams: slots 0-3 are the client's
 *   unidirectional streams 2, 6, 10, 14; slots 4-15 its bidirectional
 *   streams 0, 4, ..., 44), flag = op & 0x10
 *   0  bytes on slot: LEN(1 byte) then LEN bytes; flag = FIN
 *   1  bytes on slot: LEN(2 bytes, big endian) then LEN bytes; flag = FIN
 *   2  RESET_STREAM on slot: CODE(1 byte, see peer_code)
 *   3  STOP_SENDING on slot: CODE(1 byte)
 *   4  send capacity per write: C(1 byte): 0 blocks, 255 is 1 MiB,
 *      else C * 64 bytes
 *   5  time passes: T(1 byte) * 50 ms, then the session's tick
 *   6  graceful close (GOAWAY, drain deadline 5 s later)
 *   7  0-RTT on (flag) or off for streams that start from now on
 * The session processes after every operation. Once it closed the
 * connection nothing more arrives (as with a real connection).
 *
 * Requests are answered by their stream id: id/4 % 4 is 0 an immediate
 * response, 1 a response once the body is read, 2 a streamed 6000-byte
 * response with a trailer, 3 no response (the handler keeps it until the
 * connection goes).
 *
 * Invariants (besides ASan/UBSan/LSan: no crash, no leak):
 * - every request handed to the handler gets exactly one close callback;
 * - no stream gets data after the server's FIN or reset;
 * - the server's control stream starts with its type and SETTINGS, its
 *   QPACK streams with their types;
 * - a response stream starts with a HEADERS frame;
 * - a connection close carries an HTTP/3 or QPACK error code. */
#include <string.h>

#include "core/config.h"
#include "fake_quiche.h"
#include "fuzz.h"
#include "h3/session.h"
#include "h3q.h"
#include "quic/conn.h"

#define STREAMED_BODY 6000
#define MAX_OPS 4096

typedef struct harness {
  quiche_conn fc;
  conn c;
  h3_config cfg;
  h3q_server_stats stats;
  h3_session *h;
  uint64_t now_ns;
  size_t requests, closes;
} harness;

/* ---- the handler side ---- */

/* One request's state, from the handler until its close callback. */
typedef struct req_state {
  harness *t;
  size_t sent; /* streamed body bytes written */
} req_state;

static void on_close(h3q_response *res, bool aborted, void *user) {
  (void)res, (void)aborted;
  req_state *rs = user;
  rs->t->closes++;
  free(rs);
}

static void stream_more(h3q_response *res, void *user) {
  req_state *rs = user;
  static const uint8_t chunk[1024];
  for (int i = 0; i < 64 && rs->sent < STREAMED_BODY; i++) {
    size_t want = STREAMED_BODY - rs->sent;
    ssize_t n = h3q_response_write(res, chunk, want < 1024 ? want : 1024);
    if (n <= 0)
      return; /* on_writable calls again; errors end with the stream */
    rs->sent += (size_t)n;
  }
  if (rs->sent == STREAMED_BODY) {
    h3q_response_trailer(res, "x-done", "1");
    h3q_response_end(res);
  }
}

static void discard(h3q_request *req, const uint8_t *data, size_t len,
                    void *user) {
  (void)req, (void)data, (void)len, (void)user;
}

static void body_end(h3q_request *req, void *user) {
  (void)user;
  h3q_response_send(h3q_request_response(req), 200, "text/plain", "done", 4);
}

static void on_request(h3q_request *req, h3q_response *res, void *user) {
  harness *t = user;
  req_state *rs = calloc(1, sizeof *rs);
  if (!rs) {
    h3q_response_reset(res, H3Q_H3_INTERNAL_ERROR);
    return;
  }
  rs->t = t;
  t->requests++;
  h3q_response_on_close(res, on_close, rs);
  switch ((h3q_request_stream_id(req) / 4) % 4) {
  case 0:
    h3q_response_send(res, 200, "text/plain", "ok\n", 3);
    break;
  case 1:
    h3q_request_on_body(req, discard, body_end, rs);
    break;
  case 2:
    h3q_response_set_status(res, 200);
    h3q_response_on_writable(res, stream_more, rs);
    stream_more(res, rs);
    break;
  default:
    break; /* never answered */
  }
}

/* ---- the connection side ---- */

static uint64_t slot_stream(unsigned slot) {
  return slot < 4 ? 2 + 4 * (uint64_t)slot : 4 * (uint64_t)(slot - 4);
}

/* Error codes a peer sends in resets: HTTP/3's, QPACK's, and odd ones. */
static uint64_t peer_code(uint8_t b) {
  static const uint64_t odd[] = {0, 0x21, 0x1f21, 0x3fffffffffffffffull};
  if (b < 0x11)
    return 0x100 + b;
  if (b < 0x14)
    return 0x200 + (uint64_t)(b - 0x11);
  return odd[b % 4];
}

static bool is_h3_close_code(uint64_t code) {
  return (code >= H3Q_H3_NO_ERROR && code <= H3Q_H3_VERSION_FALLBACK) ||
         (code >= H3Q_QPACK_DECOMPRESSION_FAILED &&
          code <= H3Q_QPACK_DECODER_STREAM_ERROR) ||
         code == H3Q_H3_DATAGRAM_ERROR;
}

static void harness_init(harness *t) {
  memset(t, 0, sizeof *t);
  fake_conn_init(&t->fc, 1 << 20);
  h3q_config pub;
  h3q_config_init(&pub);
  h3_config_init(&t->cfg, &pub);
  t->cfg.on_request = on_request;
  t->cfg.user = t;
  t->cfg.stats = &t->stats;
  t->c.q = &t->fc;
  t->now_ns = 1000000000u;
}

static bool take(const uint8_t **d, size_t *n, size_t want,
                 const uint8_t **out) {
  if (*n < want)
    return false;
  *out = *d;
  *d += want;
  *n -= want;
  return true;
}

/* Runs one operation; returns false when the input ends inside it. */
static bool run_op(harness *t, const uint8_t **d, size_t *n) {
  const uint8_t *op, *arg;
  if (!take(d, n, 1, &op))
    return false;
  unsigned kind = op[0] >> 5, slot = op[0] & 0x0f;
  bool flag = op[0] & 0x10;
  uint64_t id = slot_stream(slot);
  size_t len;
  switch (kind) {
  case 0:
  case 1:
    if (!take(d, n, kind + 1, &arg))
      return false;
    len = kind == 0 ? arg[0] : (size_t)arg[0] << 8 | arg[1];
    len = len < *n ? len : *n;
    take(d, n, len, &arg);
    fake_peer_send(&t->fc, id, arg, len, flag);
    return true;
  case 2:
  case 3:
    if (!take(d, n, 1, &arg))
      return false;
    if (kind == 2)
      fake_peer_reset(&t->fc, id, peer_code(arg[0]));
    else
      fake_peer_stop(&t->fc, id, peer_code(arg[0]));
    return true;
  case 4:
    if (!take(d, n, 1, &arg))
      return false;
    t->fc.capacity = arg[0] == 255 ? (size_t)1 << 20 : (size_t)arg[0] * 64;
    return true;
  case 5:
    if (!take(d, n, 1, &arg))
      return false;
    t->now_ns += (uint64_t)arg[0] * 50000000u;
    h3_app_ops.tick(t->h, t->now_ns);
    return true;
  case 6:
    h3_app_ops.goaway(t->h, t->now_ns + 5000000000u);
    return true;
  default:
    t->fc.early_data = flag;
    return true;
  }
}

static void check_stream(const fake_stream *s) {
  FUZZ_CHECK(!s->data_after_fin);
  if (s->out_len == 0)
    return;
  switch (s->id) {
  case 3:
    FUZZ_CHECK(s->out_head[0] == H3_STREAM_CONTROL);
    FUZZ_CHECK(s->out_len < 2 || s->out_head[1] == H3_FRAME_SETTINGS);
    break;
  case 7:
    FUZZ_CHECK(s->out_head[0] == H3_STREAM_QPACK_ENCODER);
    break;
  case 11:
    FUZZ_CHECK(s->out_head[0] == H3_STREAM_QPACK_DECODER);
    break;
  default:
    if ((s->id & 3) == 0) /* a response starts with HEADERS */
      FUZZ_CHECK(s->out_head[0] == H3_FRAME_HEADERS);
    break;
  }
}

/* What happened, for reading a reproducer (FUZZ_H3_VERBOSE=1). */
static void describe(const harness *t) {
  fprintf(stderr, "requests %zu, closes %zu, connection %s 0x%llx\n",
          t->requests, t->closes, t->fc.closed ? "closed" : "open",
          (unsigned long long)t->fc.close_code);
  for (size_t i = 0; i < t->fc.count; i++) {
    const fake_stream *s = &t->fc.streams[i];
    fprintf(stderr, "  stream %llu: in %zu%s%s, out %zu%s%s%s\n",
            (unsigned long long)s->id, s->in.len, s->in_fin ? " fin" : "",
            s->in_reset ? " reset" : "", s->out_len, s->out_fin ? " fin" : "",
            s->out_reset ? " reset" : "", s->read_shut ? " stop-sending" : "");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  harness *t = malloc(sizeof *t);
  if (!t)
    abort();
  harness_init(t);
  t->h = h3_app_ops.start(&t->c, &t->cfg);
  FUZZ_CHECK(t->h != NULL);
  t->c.app = t->h;
  h3_app_ops.process(t->h);
  for (int i = 0; i < MAX_OPS && !t->fc.closed; i++) {
    if (!run_op(t, &data, &size))
      break;
    h3_app_ops.process(t->h);
  }
  if (t->fc.closed)
    FUZZ_CHECK(is_h3_close_code(t->fc.close_code));
  h3_app_ops.destroy(t->h);
  if (getenv("FUZZ_H3_VERBOSE"))
    describe(t);
  FUZZ_CHECK(t->closes == t->requests);
  for (size_t i = 0; i < t->fc.count; i++)
    check_stream(&t->fc.streams[i]);
  fake_conn_free(&t->fc);
  free(t);
  return 0;
}
