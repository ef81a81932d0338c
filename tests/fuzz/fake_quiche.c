/* The fake quiche connection of fake_quiche.h: a table of streams with
 * their bytes in each direction. Behaviour follows quiche 0.30 where the
 * session can tell the difference: a stream is queued readable when the
 * peer's bytes, FIN or reset arrive and leaves the queue when
 * quiche_conn_stream_readable_next returns it; a reset is reported by
 * stream_recv with its code; writes to a stopped stream fail with
 * STOP_SENDING's code. */
#include "fake_quiche.h"

#include <string.h>

#include "quic/conn.h"

void fake_conn_init(quiche_conn *fc, size_t capacity) {
  memset(fc, 0, sizeof *fc);
  fc->capacity = capacity;
}

void fake_conn_free(quiche_conn *fc) {
  for (size_t i = 0; i < fc->count; i++)
    buf_free(&fc->streams[i].in);
}

static fake_stream *find(const quiche_conn *fc, uint64_t id) {
  for (size_t i = 0; i < fc->count; i++)
    if (fc->streams[i].id == id)
      return (fake_stream *)&fc->streams[i];
  return NULL;
}

fake_stream *fake_stream_get(quiche_conn *fc, uint64_t id) {
  fake_stream *s = find(fc, id);
  if (s || fc->count == FAKE_STREAMS_MAX)
    return s;
  s = &fc->streams[fc->count++];
  memset(s, 0, sizeof *s);
  s->id = id;
  return s;
}

static void mark_readable(quiche_conn *fc, const fake_stream *s) {
  fc->readable |= 1ull << (size_t)(s - fc->streams);
}

bool fake_peer_send(quiche_conn *fc, uint64_t id, const uint8_t *data,
                    size_t len, bool fin) {
  fake_stream *s = fake_stream_get(fc, id);
  if (!s || s->in_fin || s->in_reset)
    return false;
  if (!s->read_shut) /* quiche drops what arrives after STOP_SENDING */
    buf_append(&s->in, data, len);
  s->in_fin = fin;
  if (!s->read_shut && (len > 0 || fin))
    mark_readable(fc, s);
  return true;
}

void fake_peer_reset(quiche_conn *fc, uint64_t id, uint64_t code) {
  fake_stream *s = fake_stream_get(fc, id);
  if (!s || s->in_reset || s->in_fin_read)
    return;
  s->in_reset = true;
  s->in_reset_code = code;
  if (!s->read_shut)
    mark_readable(fc, s);
}

void fake_peer_stop(quiche_conn *fc, uint64_t id, uint64_t code) {
  fake_stream *s = fake_stream_get(fc, id);
  if (s && !s->stopped) {
    s->stopped = true;
    s->stop_code = code;
  }
}

static size_t pending(const fake_stream *s) {
  return s->in.len - s->in_read;
}

ssize_t quiche_conn_stream_recv(quiche_conn *conn, uint64_t stream_id,
                                uint8_t *out, size_t buf_len, bool *fin,
                                uint64_t *out_error_code) {
  fake_stream *s = find(conn, stream_id);
  *fin = false;
  if (!s || s->read_shut)
    return QUICHE_ERR_DONE;
  if (s->in_reset) {
    *out_error_code = s->in_reset_code;
    return QUICHE_ERR_STREAM_RESET;
  }
  size_t n = pending(s) < buf_len ? pending(s) : buf_len;
  if (n == 0 && !(s->in_fin && !s->in_fin_read))
    return QUICHE_ERR_DONE;
  if (n > 0)
    memcpy(out, s->in.data + s->in_read, n);
  s->in_read += n;
  if (s->in_fin && pending(s) == 0) {
    *fin = true;
    s->in_fin_read = true;
  }
  return (ssize_t)n;
}

ssize_t quiche_conn_stream_send(quiche_conn *conn, uint64_t stream_id,
                                const uint8_t *b, size_t buf_len, bool fin,
                                uint64_t *out_error_code) {
  if ((stream_id & 3) == 2) /* the peer's unidirectional streams */
    return QUICHE_ERR_INVALID_STREAM_STATE;
  fake_stream *s = fake_stream_get(conn, stream_id);
  if (!s)
    return QUICHE_ERR_STREAM_LIMIT;
  if (s->stopped) {
    *out_error_code = s->stop_code;
    return QUICHE_ERR_STREAM_STOPPED;
  }
  if (s->out_fin || s->out_reset) {
    s->data_after_fin = s->data_after_fin || buf_len > 0;
    return QUICHE_ERR_FINAL_SIZE;
  }
  size_t n = buf_len < conn->capacity ? buf_len : conn->capacity;
  if (n == 0 && buf_len > 0)
    return QUICHE_ERR_DONE;
  for (size_t i = 0; i < n && s->out_len + i < sizeof s->out_head; i++)
    s->out_head[s->out_len + i] = b[i];
  s->out_len += n;
  s->out_fin = fin && n == buf_len;
  return (ssize_t)n;
}

int quiche_conn_stream_priority(quiche_conn *conn, uint64_t stream_id,
                                uint8_t urgency, bool incremental) {
  (void)urgency, (void)incremental;
  return find(conn, stream_id) ? 0 : QUICHE_ERR_INVALID_STREAM_STATE;
}

int quiche_conn_stream_shutdown(quiche_conn *conn, uint64_t stream_id,
                                enum quiche_shutdown direction, uint64_t err) {
  (void)err;
  fake_stream *s = find(conn, stream_id);
  if (!s)
    return QUICHE_ERR_DONE;
  if (direction == QUICHE_SHUTDOWN_READ) {
    s->read_shut = true;
    s->in_read = s->in.len; /* quiche discards what was buffered */
  } else {
    s->out_reset = true;
  }
  return 0;
}

ssize_t quiche_conn_stream_capacity(quiche_conn *conn, uint64_t stream_id) {
  fake_stream *s = find(conn, stream_id);
  if (s && s->stopped)
    return QUICHE_ERR_STREAM_STOPPED;
  if (s && (s->out_fin || s->out_reset))
    return QUICHE_ERR_INVALID_STREAM_STATE;
  return (ssize_t)conn->capacity;
}

bool quiche_conn_stream_readable(const quiche_conn *conn, uint64_t stream_id) {
  const fake_stream *s = find(conn, stream_id);
  return s && !s->read_shut &&
         (pending(s) > 0 || s->in_reset || (s->in_fin && !s->in_fin_read));
}

int64_t quiche_conn_stream_readable_next(quiche_conn *conn) {
  for (size_t i = 0; i < conn->count; i++) {
    if (conn->readable & (1ull << i)) {
      conn->readable &= ~(1ull << i);
      return (int64_t)conn->streams[i].id;
    }
  }
  return -1;
}

int quiche_conn_stream_writable(quiche_conn *conn, uint64_t stream_id,
                                size_t len) {
  ssize_t cap = quiche_conn_stream_capacity(conn, stream_id);
  if (cap < 0)
    return (int)cap;
  return (size_t)cap >= len;
}

bool quiche_conn_stream_finished(const quiche_conn *conn, uint64_t stream_id) {
  const fake_stream *s = find(conn, stream_id);
  return s && (s->in_fin_read || s->in_reset);
}

bool quiche_conn_is_in_early_data(const quiche_conn *conn) {
  return conn->early_data;
}

bool quiche_conn_is_draining(const quiche_conn *conn) {
  return conn->closed;
}

uint64_t quiche_conn_peer_streams_left_bidi(const quiche_conn *conn) {
  (void)conn;
  return 100;
}

uint64_t quiche_conn_peer_streams_left_uni(const quiche_conn *conn) {
  (void)conn;
  return 100;
}

int quiche_conn_path_stats(const quiche_conn *conn, size_t idx,
                           quiche_path_stats *out) {
  (void)conn, (void)idx, (void)out;
  return -1; /* no path: the session falls back to its defaults */
}

ssize_t quiche_conn_dgram_max_writable_len(const quiche_conn *conn) {
  (void)conn;
  return QUICHE_ERR_INVALID_STATE; /* the peer announced no datagrams */
}

ssize_t quiche_conn_dgram_send_queue_len(const quiche_conn *conn) {
  (void)conn;
  return 0;
}

ssize_t quiche_conn_dgram_send_queue_byte_size(const quiche_conn *conn) {
  (void)conn;
  return 0;
}

/* The QUIC layer's calls from the session. */
void conn_close(conn *c, uint64_t app_error) {
  c->q->close_calls++;
  if (!c->q->closed) {
    c->q->closed = true;
    c->q->close_code = app_error;
  }
}

void conn_mark_dirty(conn *c) {
  c->dirty = true;
}

bool conn_peer_cert_verified(const conn *c) {
  (void)c;
  return false; /* no TLS here: no client certificate */
}

/* core/config.c wipes a copied server secret with libsodium, which the
 * fuzz build does not link (same prototype as <sodium/utils.h>). */
void sodium_memzero(void *pnt, size_t len);
void sodium_memzero(void *pnt, size_t len) {
  volatile unsigned char *p = pnt;
  while (len--)
    *p++ = 0;
}

/* core/config.c validates quic_lb_server_id through quic/cid.c, which
 * reads hex with libsodium: the same contract for hex digits only (no
 * ignored characters), as <sodium/codecs.h> declares it. */
int sodium_hex2bin(unsigned char *const bin, const size_t bin_maxlen,
                   const char *const hex, const size_t hex_len,
                   const char *const ignore, size_t *const bin_len,
                   const char **const hex_end);
static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}
int sodium_hex2bin(unsigned char *const bin, const size_t bin_maxlen,
                   const char *const hex, const size_t hex_len,
                   const char *const ignore, size_t *const bin_len,
                   const char **const hex_end) {
  (void)ignore;
  size_t i = 0, n = 0;
  int rc = 0;
  for (; i + 1 < hex_len; i += 2) {
    int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0)
      break;
    if (n >= bin_maxlen) {
      rc = -1;
      break;
    }
    bin[n++] = (unsigned char)(hi * 16 + lo);
  }
  if (bin_len)
    *bin_len = n;
  if (hex_end)
    *hex_end = hex + i;
  return rc;
}
