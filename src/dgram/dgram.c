/* QUIC DATAGRAM queues: reading what quiche received (counting what its
 * full receive queue dropped), and sending with the oldest datagram
 * dropped when the send queue is full. */
#include "dgram/dgram.h"

#include <stdlib.h>
#include <string.h>

#include "dgram/dgram_internal.h"
#include "quic/conn.h"
#include "util/log.h"

/* Datagrams read per process round; the rest waits for the next round,
 * so a flood cannot starve streams and other connections. */
#define DGRAM_READS_PER_ROUND 256
/* Room for a prefix (one varint, or a capsule header) before a payload. */
#define PREFIX_MAX 16

/* quiche_conn_dgram_purge_outgoing takes a predicate without user data
 * and visits the queue oldest first: this one says yes purge_left times.
 * The loop is single-threaded per server; _Thread_local keeps servers on
 * different threads apart. */
static _Thread_local size_t purge_left;

static bool purge_oldest(uint8_t *p, size_t len) {
  (void)p, (void)len;
  if (!purge_left)
    return false;
  purge_left--;
  return true;
}

ssize_t dgram_max_payload(const dgram_ctx *d, h3_session *h,
                          size_t prefix_len) {
  if (!d->rx)
    return H3Q_ESTATE;
  ssize_t fits = quiche_conn_dgram_max_writable_len(h3_session_quiche(h));
  if (fits < 0)
    return H3Q_ESTATE; /* no max_datagram_frame_size from the peer */
  size_t max = (size_t)fits < d->max_payload ? (size_t)fits : d->max_payload;
  return max > prefix_len ? (ssize_t)(max - prefix_len) : 0;
}

int dgram_send(const dgram_ctx *d, h3_session *h, const uint8_t *prefix,
               size_t prefix_len, const void *payload, size_t len) {
  ssize_t max = dgram_max_payload(d, h, prefix_len);
  if (max < 0)
    return (int)max;
  if (len > (size_t)max || prefix_len > PREFIX_MAX)
    return H3Q_ETOOLARGE;
  quiche_conn *q = h3_session_quiche(h);
  if (quiche_conn_is_closed(q) || quiche_conn_is_draining(q))
    return H3Q_ECLOSED;
  if (prefix_len)
    memcpy(d->tx, prefix, prefix_len);
  if (len)
    memcpy(d->tx + prefix_len, payload, len);
  ssize_t rc = quiche_conn_dgram_send(q, d->tx, prefix_len + len);
  if (rc == QUICHE_ERR_DONE) {
    purge_left = 1;
    quiche_conn_dgram_purge_outgoing(q, purge_oldest);
    purge_left = 0;
    d->stats->datagrams_send_dropped++;
    rc = quiche_conn_dgram_send(q, d->tx, prefix_len + len);
  }
  if (rc < 0) {
    LOG_DEBUG("conn %llu: datagram not queued (%zd)",
              (unsigned long long)h3_session_conn(h)->number, rc);
    return rc == QUICHE_ERR_BUFFER_TOO_SHORT ? H3Q_ETOOLARGE : H3Q_ECLOSED;
  }
  d->stats->datagrams_sent++;
  conn_mark_dirty(h3_session_conn(h));
  return H3Q_OK;
}

static void deliver(const dgram_ctx *d, h3_session *h, dgram_conn *dc,
                    const uint8_t *p, size_t len) {
  if (d->http)
    dgram_deliver_http(d, h, dc, p, len);
  else if (d->on_datagram)
    d->on_datagram(h, p, len, d->user);
  else
    d->stats->datagrams_unroutable++;
}

/* quiche drops the oldest received datagram itself when its queue is
 * full; its count of arrivals tells how many went that way. */
static void count_overflow(const dgram_ctx *d, dgram_conn *dc, quiche_conn *q) {
  quiche_stats st;
  quiche_conn_stats(q, &st);
  ssize_t queued = quiche_conn_dgram_recv_queue_len(q);
  uint64_t gone = (uint64_t)st.dgram_recv - dc->popped -
                  (queued > 0 ? (uint64_t)queued : 0);
  if (gone > dc->overflowed) {
    d->stats->datagrams_recv_dropped += gone - dc->overflowed;
    dc->overflowed = gone;
  }
}

static void dgram_process(h3_session *h, void *state, void *user) {
  const dgram_ctx *d = user;
  dgram_conn *dc = state;
  quiche_conn *q = h3_session_quiche(h);
  if (quiche_conn_dgram_recv_queue_len(q) <= 0)
    return;
  for (int i = 0; i < DGRAM_READS_PER_ROUND; i++) {
    ssize_t n = quiche_conn_dgram_recv(q, d->rx, d->max_payload);
    if (n == QUICHE_ERR_DONE)
      break;
    dc->popped++;
    if (n == QUICHE_ERR_BUFFER_TOO_SHORT) {
      d->stats->datagrams_too_large++; /* quiche dropped it */
      continue;
    }
    if (n < 0)
      break;
    d->stats->datagrams_received++;
    deliver(d, h, dc, d->rx, (size_t)n);
    if (quiche_conn_is_closed(q) || quiche_conn_is_draining(q))
      return;
  }
  count_overflow(d, dc, q);
  if (quiche_conn_dgram_recv_queue_len(q) > 0)
    conn_mark_dirty(h3_session_conn(h)); /* the rest next round */
}

static int dgram_start(h3_session *h, void **state, void *user) {
  (void)h, (void)user;
  *state = calloc(1, sizeof(dgram_conn));
  return *state ? 0 : -1;
}

static void dgram_stream_closed(h3_session *h, void *state, uint64_t id,
                                void *user) {
  (void)h, (void)user;
  dgram_route_closed(state, id);
}

static void dgram_destroy(h3_session *h, void *state, void *user) {
  (void)h, (void)user;
  dgram_routes_free(state);
  free(state);
}

const dgram_ctx *dgram_ctx_of(const h3_session *h, dgram_conn **dc) {
  for (size_t i = 0; i < h->cfg->layer_count; i++) {
    if (h->cfg->layers[i].on_process == dgram_process) {
      *dc = h3_session_layer_state(h, (int)i);
      return *dc ? h->cfg->layers[i].user : NULL;
    }
  }
  *dc = NULL;
  return NULL;
}

int dgram_ctx_init(dgram_ctx *d, h3_config *cfg, const h3q_config *pub,
                   h3q_server_stats *stats) {
  memset(d, 0, sizeof *d);
  d->layer = -1;
  d->stats = stats;
  if (!pub->enable_dgram)
    return H3Q_OK;
  d->max_payload = pub->dgram_max_payload_size;
  d->http = pub->enable_h3_datagram;
  d->rx = malloc(d->max_payload);
  d->tx = malloc(d->max_payload + PREFIX_MAX);
  if (!d->rx || !d->tx) {
    dgram_ctx_free(d);
    return H3Q_ENOMEM;
  }
  h3_layer layer = {.on_start = dgram_start,
                    .on_process = dgram_process,
                    .on_stream_closed = dgram_stream_closed,
                    .on_destroy = dgram_destroy,
                    .user = d};
  d->layer = h3_config_add_layer(cfg, &layer);
  return d->layer < 0 ? d->layer : H3Q_OK;
}

void dgram_ctx_free(dgram_ctx *d) {
  free(d->rx);
  free(d->tx);
  d->rx = d->tx = NULL;
}
