/* What a session does on its own over time: GOAWAY and draining, and the
 * request header and body idle timeouts (slow clients). */
#include "h3/session.h"
#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "util/clock.h"
#include "util/log.h"

void h3_drain_goaway(h3_session *h, uint64_t deadline_ns) {
  if (h->going_away)
    return;
  h->going_away = true;
  h->drain_deadline_ns = deadline_ns;
  /* Requests already seen keep going; the id after the highest one is the
   * first the client must retry elsewhere (RFC 9114 section 5.2). */
  h->goaway_id = h->any_request ? h->max_request_id + 4 : 0;
  if (h3_frame_write_varint_frame(&h->ctrl_out, H3_FRAME_GOAWAY,
                                  h->goaway_id) != 0) {
    conn_close(h->c, H3Q_H3_NO_ERROR); /* out of memory: close at once */
    return;
  }
  LOG_DEBUG("conn %llu: GOAWAY %llu", (unsigned long long)h->c->number,
            (unsigned long long)h->goaway_id);
  conn_mark_dirty(h->c);
}

bool h3_drain_refuses(h3_session *h, uint64_t id) {
  if (!h->going_away || id < h->goaway_id)
    return false;
  quiche_conn_stream_shutdown(h->q, id, QUICHE_SHUTDOWN_READ,
                              H3Q_H3_REQUEST_REJECTED);
  quiche_conn_stream_shutdown(h->q, id, QUICHE_SHUTDOWN_WRITE,
                              H3Q_H3_REQUEST_REJECTED);
  return true;
}

/* Pruning the flushing set costs one lookup per entry; doing it when the
 * set doubles past this keeps it amortized O(1) per request. */
#define FLUSHING_PRUNE_AT 64

void h3_drain_track_flushing(h3_session *h, uint64_t id) {
  ssize_t cap = quiche_conn_stream_capacity(h->q, id);
  if (cap >= 0 || cap == QUICHE_ERR_STREAM_STOPPED)
    u64map_put(&h->flushing, id, h); /* any non-NULL value */
}

/* Drops streams quiche has collected (all data acknowledged). */
static void prune_flushing(h3_session *h) {
  for (size_t i = 0; i < h->flushing.cap; i++) {
    u64map_slot *slot = &h->flushing.slots[i];
    while (slot->value && quiche_conn_stream_capacity(h->q, slot->key) ==
                              QUICHE_ERR_INVALID_STREAM_STATE)
      u64map_del(&h->flushing, slot->key); /* refills slot i: check again */
  }
}

/* Closing discards what quiche has not sent, GOAWAY included, and the C
 * API does not say when the control stream's data was acknowledged: so
 * the close waits a few round trips after GOAWAY left our buffer. */
#define GOAWAY_GRACE_RTTS 4
#define GOAWAY_GRACE_MIN_NS (20u * 1000000u)

static bool goaway_delivered(h3_session *h) {
  if (h->ctrl_out.len)
    return false; /* still waiting for room on the control stream */
  uint64_t now = clock_now_ns();
  if (!h->goaway_sent_ns)
    h->goaway_sent_ns = now;
  quiche_path_stats ps;
  uint64_t rtt = quiche_conn_path_stats(h->q, 0, &ps) == 0 ? ps.rtt : 0;
  uint64_t grace = GOAWAY_GRACE_RTTS * rtt;
  if (grace < GOAWAY_GRACE_MIN_NS)
    grace = GOAWAY_GRACE_MIN_NS;
  return now - h->goaway_sent_ns >= grace;
}

bool h3_drain_done(h3_session *h) {
  if (h->flushing.len > FLUSHING_PRUNE_AT * 2 ||
      (h->going_away && h->streams.len == 0))
    prune_flushing(h);
  return h->going_away && h->streams.len == 0 && h->flushing.len == 0 &&
         goaway_delivered(h);
}

/* A header section overdue: reset with H3_REQUEST_INCOMPLETE. */
static bool check_header_timeout(stream *s, uint64_t now) {
  uint64_t limit = s->h->cfg->header_timeout_ns;
  if (!limit || s->rstate != REQ_HEADERS || now - s->opened_ns < limit)
    return false;
  LOG_DEBUG("conn %llu stream %llu: header timeout",
            (unsigned long long)s->h->c->number, (unsigned long long)s->id);
  stream_abort(s, H3Q_H3_REQUEST_INCOMPLETE);
  return true;
}

/* A body the client stopped sending: 408, or a reset once answered. Only
 * when h3q has read everything (not when the application holds back). */
static void check_body_timeout(stream *s, uint64_t now) {
  uint64_t limit = s->h->cfg->body_idle_timeout_ns;
  uint64_t since = s->last_body_ns ? s->last_body_ns : s->opened_ns;
  if (!limit || s->rstate != REQ_BODY || s->body_readable || s->paused ||
      s->tunnel || now - since < limit)
    return;
  LOG_DEBUG("conn %llu stream %llu: body idle timeout",
            (unsigned long long)s->h->c->number, (unsigned long long)s->id);
  if (s->wstate == RES_IDLE) {
    request_stop_reading(s, H3Q_H3_REQUEST_CANCELLED);
    stream_respond_status(s, 408, NULL);
  } else {
    stream_abort(s, H3Q_H3_REQUEST_CANCELLED);
  }
  conn_mark_dirty(s->h->c);
}

void h3_drain_tick(h3_session *h, uint64_t now) {
  if (h->going_away) {
    if (now >= h->drain_deadline_ns) {
      conn_close(h->c, H3Q_H3_NO_ERROR);
      return;
    }
    conn_mark_dirty(h->c); /* process closes it once drained */
  }
  for (size_t i = 0; i < h->streams.cap; i++) {
    stream *s = h->streams.slots[i].value;
    if (s && !s->closed && !check_header_timeout(s, now))
      check_body_timeout(s, now);
  }
}
