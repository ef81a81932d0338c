/* WebTransport streams: the client's (claimed through HTTP/3's
 * stream-type registry and bound to a session once their preface names
 * it) and ours, reads and writes under QUIC flow control (the same room
 * as responses: h3_stream_room), resets and stops with WebTransport
 * codes, and the end of each: both directions done, or the session gone.
 * Close callbacks run from wt_streams_reap, never from inside an API
 * call, so a callback may use any stream it holds. */
#include <stdlib.h>
#include <string.h>

#include "h3/session.h"
#include "util/log.h"
#include "util/varint.h"
#include "wt/wt_internal.h"

/* Bytes discarded per call from a stream nobody owns any more. */
#define DISCARD_CHUNK 4096
#define DISCARD_READS 16
/* Streams reaped per call: more than any session can have. */
#define REAP_MAX (1u << 24)

static quiche_conn *quic(const h3q_wt_stream *st) {
  return h3_session_quiche(st->wc->h);
}

/* The WebTransport code inside an HTTP/3 code, or -2 when there is none. */
static int64_t wt_code_of(uint64_t h3_code) {
  uint32_t code;
  return h3q_wt_code_from_h3(h3_code, &code) ? (int64_t)code : -2;
}

static h3q_wt_stream *stream_new(wt_conn *wc, uint64_t id, bool local) {
  h3q_wt_stream *st = calloc(1, sizeof *st);
  if (!st)
    return NULL;
  st->wc = wc;
  st->id = id;
  st->local = local;
  st->bidi = (id & 2) == 0;
  st->can_read = st->bidi || !local;
  st->can_write = st->bidi || local;
  st->reset_code = st->stop_code = -1;
  if (u64map_put(&wc->streams, id, st) != 0) {
    free(st);
    return NULL;
  }
  return st;
}

static void stream_free(h3q_wt_stream *st) {
  u64map_del(&st->wc->streams, st->id);
  buf_free(&st->preface);
  free(st);
}

static void link_to_session(h3q_wt_stream *st, h3q_wt_session *ses) {
  st->ses = ses;
  st->next = ses->streams;
  if (ses->streams)
    ses->streams->prev = st;
  ses->streams = st;
  ses->stream_count++;
  st->wc->w->stats->wt_streams_opened++;
}

static void unlink_from_session(h3q_wt_stream *st) {
  h3q_wt_session *ses = st->ses;
  if (st->prev)
    st->prev->next = st->next;
  else
    ses->streams = st->next;
  if (st->next)
    st->next->prev = st->prev;
  ses->stream_count--;
  st->ses = NULL;
}

/* Looked at again in the next wt_streams_service (no wake-up: blocked
 * writes wait for packets, which process the connection anyway). */
static void todo_add(h3q_wt_stream *st) {
  if (st->in_todo || st->finished)
    return;
  st->in_todo = true;
  st->todo_next = st->wc->todo;
  st->wc->todo = st;
}

static void todo_remove(wt_conn *wc, h3q_wt_stream *st) {
  for (h3q_wt_stream **p = &wc->todo; *p; p = &(*p)->todo_next) {
    if (*p == st) {
      *p = st->todo_next;
      st->in_todo = false;
      return;
    }
  }
}

/* Both directions done: close callback on the next reap. */
static void maybe_finish(h3q_wt_stream *st) {
  if (st->finished || (st->can_read && !st->read_done) ||
      (st->can_write && !st->write_done))
    return;
  st->finished = true;
  st->reap_next = st->wc->reap;
  st->wc->reap = st;
  wt_conn_wake(st->wc);
}

/* quiche refused a write: the peer stopped the stream (its code), or the
 * stream is gone. */
static void write_failed(h3q_wt_stream *st, ssize_t err, uint64_t code) {
  if (err == QUICHE_ERR_STREAM_STOPPED)
    st->stop_code = wt_code_of(code);
  st->write_done = true;
  st->aborted = true;
  st->end_requested = st->want_writable = false;
  maybe_finish(st);
}

/* The peer's STOP_SENDING code, found by a zero-length write. */
static uint64_t stopped_code(h3q_wt_stream *st) {
  uint64_t code = 0;
  uint8_t none = 0;
  quiche_conn_stream_send(quic(st), st->id, &none, 0, false, &code);
  return code;
}

/* Bytes went into quiche: remember when (see h3_stream_send_fin). */
static void note_written(h3q_wt_stream *st) {
  st->write_generation = h3_session_send_generation(st->wc->h) + 1;
}

static bool data_unsent(const h3q_wt_stream *st) {
  return st->write_generation == h3_session_send_generation(st->wc->h) + 1;
}

/* Sends what is left of our preface (stream type, session id). H3Q_OK
 * when none is left, H3Q_EAGAIN, or H3Q_ECLOSED. */
static int flush_preface(h3q_wt_stream *st) {
  if (!st->preface.len)
    return H3Q_OK;
  uint64_t code = 0;
  ssize_t n = quiche_conn_stream_send(quic(st), st->id, st->preface.data,
                                      st->preface.len, false, &code);
  if (n == QUICHE_ERR_DONE)
    return H3Q_EAGAIN;
  if (n < 0) {
    write_failed(st, n, code);
    return H3Q_ECLOSED;
  }
  buf_consume(&st->preface, (size_t)n);
  if (n > 0)
    note_written(st);
  wt_conn_wake(st->wc);
  return st->preface.len ? H3Q_EAGAIN : H3Q_OK;
}

static void send_fin(h3q_wt_stream *st) {
  int rc = flush_preface(st);
  if (rc != H3Q_OK) {
    if (rc == H3Q_EAGAIN)
      todo_add(st);
    return;
  }
  uint64_t code = 0;
  ssize_t n = h3_stream_send_fin(st->wc->h, st->id, data_unsent(st), &code);
  if (n == QUICHE_ERR_DONE) {
    todo_add(st); /* retried in wt_streams_service */
    if (!h3_session_processing(st->wc->h))
      wt_conn_wake(st->wc); /* in processing, ACKs bring the next round */
    return;
  }
  if (n < 0) {
    write_failed(st, n, code);
    return;
  }
  st->end_requested = false;
  st->write_done = st->fin_sent = true;
  wt_conn_wake(st->wc);
  maybe_finish(st);
}

/* ---- the client's streams (stream-type registry) ---- */

static void reject(h3q_wt_stream *st) {
  quiche_conn *q = quic(st);
  if (st->can_read)
    quiche_conn_stream_shutdown(q, st->id, QUICHE_SHUTDOWN_READ,
                                H3Q_WT_BUFFERED_STREAM_REJECTED);
  if (st->can_write)
    quiche_conn_stream_shutdown(q, st->id, QUICHE_SHUTDOWN_WRITE,
                                H3Q_WT_BUFFERED_STREAM_REJECTED);
  st->wc->w->stats->wt_streams_rejected++;
  LOG_DEBUG("wt stream %llu refused", (unsigned long long)st->id);
  stream_free(st);
}

static void readable_event(h3q_wt_stream *st) {
  st->readable = true;
  if (st->on_readable)
    st->on_readable(st, st->readable_user);
}

/* The preface named session sid. */
static void bind_session(h3q_wt_stream *st, uint64_t sid, bool fin) {
  wt_conn *wc = st->wc;
  if (sid % 4 != 0) {
    /* Session ids are client-initiated bidirectional stream ids. */
    h3_session_fail(wc->h, H3Q_H3_ID_ERROR, "WebTransport session id");
    return;
  }
  h3q_wt_session *ses = u64map_get(&wc->sessions, sid);
  if (!ses || ses->state != WT_OPEN || !ses->on_stream ||
      ses->stream_count >= wc->w->max_streams) {
    reject(st); /* unknown or ended session, nobody to take it, or full */
    return;
  }
  link_to_session(st, ses);
  st->fin_pending = fin;
  ses->on_stream(ses, st, ses->stream_user);
  if (st->finished || st->read_done)
    return;
  if (fin || quiche_conn_stream_readable(quic(st), st->id))
    readable_event(st);
}

static size_t sid_bytes_needed(const h3q_wt_stream *st) {
  return st->sid_have ? ((size_t)1 << (st->sid[0] >> 6)) - st->sid_have : 1;
}

/* Reads the session id varint after the stream type. */
static void read_preface(h3q_wt_stream *st) {
  bool fin = false;
  for (int i = 0; i < 8 && sid_bytes_needed(st) && !fin; i++) {
    uint64_t code = 0;
    ssize_t n =
        quiche_conn_stream_recv(quic(st), st->id, st->sid + st->sid_have,
                                sid_bytes_needed(st), &fin, &code);
    if (n == QUICHE_ERR_DONE)
      return; /* the rest comes later */
    if (n < 0)
      break;
    st->sid_have = (uint8_t)(st->sid_have + n);
  }
  if (sid_bytes_needed(st)) {
    /* Reset, or ended before naming a session: nothing to do with it. */
    if (st->can_write)
      quiche_conn_stream_shutdown(quic(st), st->id, QUICHE_SHUTDOWN_WRITE,
                                  H3Q_H3_NO_ERROR);
    stream_free(st);
    return;
  }
  uint64_t sid;
  varint_decode(st->sid, st->sid_have, &sid);
  bind_session(st, sid, fin);
}

uint64_t wt_stream_on_claim(h3_session *h, uint64_t id, void *user) {
  wt_conn *wc = wt_conn_of(user, h);
  if (!wc || !stream_new(wc, id, false))
    return H3Q_H3_EXCESSIVE_LOAD;
  return 0;
}

/* Bytes for a stream whose object is gone (refused, or closed after
 * reading stopped): read and dropped. */
static void discard(h3_session *h, uint64_t id) {
  uint8_t tmp[DISCARD_CHUNK];
  for (int i = 0; i < DISCARD_READS; i++) {
    bool fin = false;
    uint64_t code = 0;
    if (quiche_conn_stream_recv(h3_session_quiche(h), id, tmp, sizeof tmp, &fin,
                                &code) <= 0 ||
        fin)
      return;
  }
}

void wt_stream_on_readable(h3_session *h, uint64_t id, void *user) {
  wt_conn *wc = wt_conn_of(user, h);
  h3q_wt_stream *st = wc ? u64map_get(&wc->streams, id) : NULL;
  if (!st)
    discard(h, id);
  else if (!st->ses && !st->local)
    read_preface(st);
  else if (st->can_read && !st->read_done && !st->finished)
    readable_event(st);
}

/* ---- the end of streams ---- */

void wt_streams_end_session(h3q_wt_session *ses) {
  quiche_conn *q = h3_session_quiche(ses->wc->h);
  for (h3q_wt_stream *st = ses->streams; st; st = st->next) {
    if (st->can_write && !st->write_done) {
      quiche_conn_stream_shutdown(q, st->id, QUICHE_SHUTDOWN_WRITE,
                                  H3Q_WT_SESSION_GONE);
      st->write_done = st->aborted = true;
    }
    if (st->can_read && !st->read_done) {
      quiche_conn_stream_shutdown(q, st->id, QUICHE_SHUTDOWN_READ,
                                  H3Q_WT_SESSION_GONE);
      st->read_done = st->aborted = true;
    }
    st->end_requested = st->want_writable = false;
    maybe_finish(st);
  }
}

void wt_streams_reap(wt_conn *wc) {
  for (unsigned i = 0; i < REAP_MAX && wc->reap; i++) {
    h3q_wt_stream *st = wc->reap;
    wc->reap = st->reap_next;
    if (st->in_todo)
      todo_remove(wc, st);
    if (st->on_close)
      st->on_close(st, st->aborted, st->close_user);
    if (st->ses)
      unlink_from_session(st);
    stream_free(st);
  }
}

void wt_streams_free_all(wt_conn *wc) {
  for (size_t i = 0; i < wc->streams.cap; i++)
    while (wc->streams.slots[i].value)
      stream_free(wc->streams.slots[i].value);
  wc->todo = NULL;
}

/* The stream may have room: flush the preface, send a FIN that waited,
 * or tell the writer. */
static void on_room(h3q_wt_stream *st) {
  if (!st->can_write || st->write_done)
    return;
  if (st->end_requested) {
    send_fin(st);
    return;
  }
  int rc = flush_preface(st);
  if (rc == H3Q_EAGAIN)
    todo_add(st);
  if (rc != H3Q_OK || !st->want_writable)
    return;
  ssize_t room = h3_stream_room(quic(st), st->id, 0);
  if (room == 0) {
    todo_add(st);
    return;
  }
  if (room < 0)
    write_failed(st, room, stopped_code(st));
  st->want_writable = false;
  if (st->on_writable) /* also after a failure: its write says why */
    st->on_writable(st, st->writable_user);
}

void wt_streams_service(wt_conn *wc) {
  h3q_wt_stream *list = wc->todo;
  wc->todo = NULL;
  while (list) {
    h3q_wt_stream *st = list;
    list = st->todo_next;
    st->in_todo = false;
    st->todo_next = NULL;
    if (st->finished)
      continue;
    if (st->notify_readable) {
      st->notify_readable = false;
      if (st->readable && st->on_readable && !st->read_done)
        st->on_readable(st, st->readable_user);
    }
    if (!st->finished)
      on_room(st);
  }
}

/* ---- public API ---- */

int h3q_wt_session_open_stream(h3q_wt_session *ses, bool bidi,
                               h3q_wt_stream **out) {
  if (!ses || !out)
    return H3Q_EINVAL;
  *out = NULL;
  if (ses->state != WT_OPEN)
    return H3Q_ECLOSED;
  wt_conn *wc = ses->wc;
  if (ses->stream_count >= wc->w->max_streams)
    return H3Q_ETOOLARGE;
  int64_t id = h3_open_stream(wc->h, bidi, bidi ? wc->w->bidi : wc->w->uni);
  if (id < 0)
    return (int)id;
  h3q_wt_stream *st = stream_new(wc, (uint64_t)id, true);
  if (!st)
    return H3Q_ENOMEM;
  if (buf_append_varint(&st->preface, bidi ? WT_STREAM_BIDI : WT_STREAM_UNI) ||
      buf_append_varint(&st->preface, ses->id)) {
    stream_free(st);
    return H3Q_ENOMEM;
  }
  link_to_session(st, ses);
  /* The first byte creates the stream in quiche; what does not fit now
   * goes before the first write. */
  if (flush_preface(st) == H3Q_EAGAIN)
    todo_add(st);
  wt_conn_wake(wc);
  *out = st;
  return H3Q_OK;
}

uint64_t h3q_wt_stream_id(const h3q_wt_stream *st) {
  return st->id;
}
h3q_wt_session *h3q_wt_stream_session(h3q_wt_stream *st) {
  return st->ses;
}
bool h3q_wt_stream_is_bidi(const h3q_wt_stream *st) {
  return st->bidi;
}
bool h3q_wt_stream_is_local(const h3q_wt_stream *st) {
  return st->local;
}
int64_t h3q_wt_stream_reset_code(const h3q_wt_stream *st) {
  return st->reset_code;
}
int64_t h3q_wt_stream_stop_code(const h3q_wt_stream *st) {
  return st->stop_code;
}

void h3q_wt_stream_on_readable(h3q_wt_stream *st, h3q_wt_stream_event_cb cb,
                               void *user) {
  st->on_readable = cb;
  st->readable_user = user;
  if (cb && (st->readable || st->fin_pending) && !st->read_done) {
    /* Data is waiting: tell on the next round, not from inside here. */
    st->readable = true;
    st->notify_readable = true;
    todo_add(st);
    wt_conn_wake(st->wc);
  }
}

void h3q_wt_stream_on_writable(h3q_wt_stream *st, h3q_wt_stream_event_cb cb,
                               void *user) {
  st->on_writable = cb;
  st->writable_user = user;
}

void h3q_wt_stream_on_close(h3q_wt_stream *st, h3q_wt_stream_close_cb cb,
                            void *user) {
  st->on_close = cb;
  st->close_user = user;
}

ssize_t h3q_wt_stream_read(h3q_wt_stream *st, void *out, size_t len) {
  if (!st->can_read)
    return H3Q_ESTATE;
  if (st->read_done)
    return st->fin_read ? 0 : H3Q_ECLOSED;
  if (st->fin_pending) {
    st->fin_pending = false;
    st->read_done = st->fin_read = true;
    maybe_finish(st);
    return 0;
  }
  if (!out || !len)
    return H3Q_EINVAL;
  bool fin = false;
  uint64_t code = 0;
  ssize_t n = quiche_conn_stream_recv(quic(st), st->id, out, len, &fin, &code);
  if (n == QUICHE_ERR_DONE) {
    st->readable = false;
    return H3Q_EAGAIN;
  }
  if (n < 0) {
    if (n == QUICHE_ERR_STREAM_RESET)
      st->reset_code = wt_code_of(code);
    st->read_done = st->aborted = true;
    maybe_finish(st);
    return H3Q_ECLOSED;
  }
  wt_conn_wake(st->wc); /* reading opened flow-control credit */
  if (fin && n > 0) {
    st->fin_pending = true;
  } else if (fin) {
    st->read_done = st->fin_read = true;
    maybe_finish(st);
  }
  return n;
}

/* Why a write cannot go on, or H3Q_OK. */
static int write_state(const h3q_wt_stream *st) {
  if (!st->can_write)
    return H3Q_ESTATE;
  if (st->write_done)
    return st->fin_sent ? H3Q_ESTATE : H3Q_ECLOSED;
  return st->end_requested ? H3Q_ESTATE : H3Q_OK;
}

/* Room for a write now; 0 arms on_writable. */
static ssize_t room_now(h3q_wt_stream *st) {
  int rc = flush_preface(st);
  if (rc == H3Q_ECLOSED)
    return rc;
  ssize_t room = rc == H3Q_OK ? h3_stream_room(quic(st), st->id, 0) : 0;
  if (room < 0) {
    write_failed(st, room, stopped_code(st));
    return H3Q_ECLOSED;
  }
  if (room == 0) {
    st->want_writable = true;
    todo_add(st);
  }
  return room;
}

ssize_t h3q_wt_stream_write(h3q_wt_stream *st, const void *data, size_t len) {
  int rc = write_state(st);
  if (rc != H3Q_OK)
    return rc;
  if (!data && len)
    return H3Q_EINVAL;
  ssize_t room = room_now(st);
  if (room <= 0)
    return room == 0 ? H3Q_EAGAIN : room;
  if (len == 0)
    return 0;
  size_t take = len < (size_t)room ? len : (size_t)room;
  uint64_t code = 0;
  ssize_t n =
      quiche_conn_stream_send(quic(st), st->id, data, take, false, &code);
  if (n == QUICHE_ERR_DONE)
    n = 0;
  else if (n < 0) {
    write_failed(st, n, code);
    return H3Q_ECLOSED;
  }
  if (n > 0)
    note_written(st);
  if ((size_t)n < len) {
    st->want_writable = true;
    todo_add(st);
  }
  wt_conn_wake(st->wc);
  return n ? n : H3Q_EAGAIN;
}

ssize_t h3q_wt_stream_capacity(h3q_wt_stream *st) {
  int rc = write_state(st);
  return rc != H3Q_OK ? rc : room_now(st);
}

int h3q_wt_stream_end(h3q_wt_stream *st) {
  int rc = write_state(st);
  if (rc != H3Q_OK)
    return rc;
  st->end_requested = true;
  send_fin(st);
  return H3Q_OK;
}

int h3q_wt_stream_reset(h3q_wt_stream *st, uint32_t code) {
  if (!st->can_write || st->write_done)
    return st->can_write && !st->fin_sent && st->aborted ? H3Q_ECLOSED
                                                         : H3Q_ESTATE;
  quiche_conn_stream_shutdown(quic(st), st->id, QUICHE_SHUTDOWN_WRITE,
                              h3q_wt_code_to_h3(code));
  st->write_done = st->aborted = true;
  st->end_requested = st->want_writable = false;
  st->preface.len = 0;
  wt_conn_wake(st->wc);
  maybe_finish(st);
  return H3Q_OK;
}

int h3q_wt_stream_stop(h3q_wt_stream *st, uint32_t code) {
  if (!st->can_read || st->read_done)
    return H3Q_ESTATE;
  quiche_conn_stream_shutdown(quic(st), st->id, QUICHE_SHUTDOWN_READ,
                              h3q_wt_code_to_h3(code));
  st->read_done = st->aborted = true;
  st->fin_pending = false;
  wt_conn_wake(st->wc);
  maybe_finish(st);
  return H3Q_OK;
}
