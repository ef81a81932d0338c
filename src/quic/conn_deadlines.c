/* What a connection does on its own over time: GOAWAY and draining, and
 * the request header and body idle timeouts (slow clients). */
#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "quic/conn.h"
#include "util/clock.h"
#include "util/log.h"

#define H3_REQUEST_REJECTED 0x10b
#define H3_REQUEST_INCOMPLETE 0x10d
#define MS 1000000u

void conn_goaway(conn *c, uint64_t deadline_ns) {
  if (c->going_away)
    return;
  c->going_away = true;
  c->drain_deadline_ns = deadline_ns;
  if (!c->h3) {
    conn_close(c, H3_NO_ERROR);
    return;
  }
  /* Requests already seen keep going; the id after the highest one is the
   * first the client must retry elsewhere (RFC 9114 section 5.2). */
  c->goaway_id = c->any_request ? c->max_request_id + 4 : 0;
  conn_retry_goaway(c);
  conn_mark_dirty(c);
}

void conn_retry_goaway(conn *c) {
  if (!c->going_away || c->goaway_sent_ns || !c->h3)
    return;
  /* Fails while responses fill the connection's send window; then it is
   * retried on every round, ahead of the streams. */
  if (quiche_h3_send_goaway(c->h3, c->q, c->goaway_id) != 0)
    return;
  c->goaway_sent_ns = clock_now_ns();
  LOG_DEBUG("conn %llu: GOAWAY %llu", (unsigned long long)c->number,
            (unsigned long long)c->goaway_id);
}

bool conn_refuses_stream(conn *c, uint64_t id) {
  if (!c->going_away || id < c->goaway_id)
    return false;
  quiche_conn_stream_shutdown(c->q, id, QUICHE_SHUTDOWN_READ,
                              H3_REQUEST_REJECTED);
  quiche_conn_stream_shutdown(c->q, id, QUICHE_SHUTDOWN_WRITE,
                              H3_REQUEST_REJECTED);
  return true;
}

/* Pruning the flushing set costs one lookup per entry; doing it when the
 * set doubles past this keeps it amortized O(1) per request. */
#define FLUSHING_PRUNE_AT 64

void conn_track_flushing(conn *c, uint64_t id) {
  ssize_t cap = quiche_conn_stream_capacity(c->q, id);
  if (cap >= 0 || cap == QUICHE_ERR_STREAM_STOPPED)
    u64map_put(&c->flushing, id, c); /* any non-NULL value */
}

/* Drops streams quiche has collected (all data acknowledged). */
static void prune_flushing(conn *c) {
  for (size_t i = 0; i < c->flushing.cap; i++) {
    u64map_slot *slot = &c->flushing.slots[i];
    while (slot->value && quiche_conn_stream_capacity(c->q, slot->key) ==
                              QUICHE_ERR_INVALID_STREAM_STATE)
      u64map_del(&c->flushing, slot->key); /* refills slot i: check again */
  }
}

/* Closing discards what quiche has not sent, GOAWAY included, and the C
 * API does not say when the control stream's data was acknowledged: so
 * the close waits a few round trips after GOAWAY (one loss and resend). */
#define GOAWAY_GRACE_RTTS 4
#define GOAWAY_GRACE_MIN_NS (20u * MS)

static bool goaway_delivered(conn *c) {
  if (!c->goaway_sent_ns)
    return false;
  quiche_path_stats ps;
  uint64_t rtt = quiche_conn_path_stats(c->q, 0, &ps) == 0 ? ps.rtt : 0;
  uint64_t grace = GOAWAY_GRACE_RTTS * rtt;
  if (grace < GOAWAY_GRACE_MIN_NS)
    grace = GOAWAY_GRACE_MIN_NS;
  return clock_now_ns() - c->goaway_sent_ns >= grace;
}

bool conn_drained(conn *c) {
  if (c->flushing.len > FLUSHING_PRUNE_AT * 2 ||
      (c->going_away && c->streams.len == 0))
    prune_flushing(c);
  return c->going_away && c->streams.len == 0 && c->flushing.len == 0 &&
         goaway_delivered(c);
}

void conn_note_new_streams(conn *c) {
  if (!c->srv->cfg.c.request_header_timeout_ms)
    return;
  quiche_stream_iter *it = quiche_conn_readable(c->q);
  if (!it)
    return;
  uint64_t id, now = 0;
  while (quiche_stream_iter_next(it, &id)) {
    /* Client-initiated bidirectional streams carry requests. */
    if ((id & 3) != 0 || u64map_get(&c->streams, id) ||
        u64map_get(&c->awaiting_headers, id))
      continue;
    now = now ? now : clock_now_ns();
    u64map_put(&c->awaiting_headers, id, (void *)(uintptr_t)(now | 1));
  }
  quiche_stream_iter_free(it);
}

/* Resets request streams whose header section is overdue. */
static void check_header_timeouts(conn *c, uint64_t now) {
  uint64_t limit = c->srv->cfg.c.request_header_timeout_ms * MS;
  for (size_t i = 0; i < c->awaiting_headers.cap; i++) {
    u64map_slot *slot = &c->awaiting_headers.slots[i];
    if (!slot->value || now - (uintptr_t)slot->value < limit)
      continue;
    uint64_t id = slot->key;
    LOG_DEBUG("conn %llu stream %llu: header timeout",
              (unsigned long long)c->number, (unsigned long long)id);
    quiche_conn_stream_shutdown(c->q, id, QUICHE_SHUTDOWN_READ,
                                H3_REQUEST_INCOMPLETE);
    quiche_conn_stream_shutdown(c->q, id, QUICHE_SHUTDOWN_WRITE,
                                H3_REQUEST_INCOMPLETE);
    u64map_del(&c->awaiting_headers, id);
    i = (size_t)-1; /* deletion moves entries: rescan (few entries) */
    conn_mark_dirty(c);
  }
}

/* A body the client stopped sending: 408, or a reset once answered. Only
 * when h3q has read everything (not when the application holds back). */
static void check_body_timeout(stream *s, uint64_t now, uint64_t limit) {
  uint64_t since = s->last_body_ns ? s->last_body_ns : s->opened_ns;
  if (s->rstate != REQ_BODY || s->body_readable || s->paused ||
      now - since < limit)
    return;
  LOG_DEBUG("conn %llu stream %llu: body idle timeout",
            (unsigned long long)s->c->number, (unsigned long long)s->id);
  if (s->wstate == RES_IDLE) {
    request_stop_reading(s, H3_REQUEST_CANCELLED);
    stream_respond_status(s, 408, NULL);
  } else {
    stream_abort(s, H3_REQUEST_CANCELLED);
  }
  conn_mark_dirty(s->c);
}

void conn_tick(conn *c, uint64_t now) {
  if (c->going_away) {
    if (now >= c->drain_deadline_ns) {
      conn_close(c, H3_NO_ERROR);
      return;
    }
    conn_mark_dirty(c); /* conn_process closes it once drained */
  }
  if (c->awaiting_headers.len)
    check_header_timeouts(c, now);
  uint64_t limit = c->srv->cfg.c.body_idle_timeout_ms * MS;
  if (!limit)
    return;
  for (size_t i = 0; i < c->streams.cap; i++)
    if (c->streams.slots[i].value)
      check_body_timeout(c->streams.slots[i].value, now, limit);
}
