/* A stand-in for the part of quiche's connection API that h3q's HTTP/3
 * session uses (stream reads and writes, shutdowns, the readable queue,
 * capacities), with no packets and no crypto: the bytes a fuzzer feeds on
 * a stream are what quiche would have handed over after decrypting and
 * reordering. conn_close and conn_mark_dirty of quic/conn.h are here too,
 * so the session links without the QUIC layer. The prototypes come from
 * the real quiche.h, so the fake cannot drift from quiche's signatures. */
#ifndef H3Q_FUZZ_FAKE_QUICHE_H
#define H3Q_FUZZ_FAKE_QUICHE_H

#include <quiche.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define FAKE_STREAMS_MAX 64

typedef struct fake_stream {
  uint64_t id;
  /* Peer -> server: bytes not read yet, FIN, RESET_STREAM. */
  buf in;
  size_t in_read;
  bool in_fin, in_fin_read, in_reset;
  uint64_t in_reset_code;
  bool read_shut; /* the server sent STOP_SENDING */
  /* Server -> peer: what was written (first bytes kept for checks). */
  uint8_t out_head[16];
  size_t out_len;
  bool out_fin, out_reset;
  bool stopped; /* the peer sent STOP_SENDING */
  uint64_t stop_code;
  bool data_after_fin; /* a broken invariant, checked by the fuzzer */
} fake_stream;

struct quiche_conn {
  fake_stream streams[FAKE_STREAMS_MAX];
  size_t count;
  uint64_t readable; /* bit i: streams[i] is queued as readable */
  size_t capacity;   /* send capacity per stream write */
  bool early_data;
  bool closed;
  uint64_t close_code;
  uint64_t close_calls;
};

/* Resets fc to a fresh connection with the given send capacity. */
void fake_conn_init(quiche_conn *fc, size_t capacity);

/* Frees the buffers of fc. */
void fake_conn_free(quiche_conn *fc);

/* The stream with this id, created when new; NULL when the table is full. */
fake_stream *fake_stream_get(quiche_conn *fc, uint64_t id);

/* The peer sends bytes (and maybe FIN) on stream id. Returns false when
 * the stream cannot take them (table full, after FIN or reset). */
bool fake_peer_send(quiche_conn *fc, uint64_t id, const uint8_t *data,
                    size_t len, bool fin);

/* The peer resets its sending side of stream id (RESET_STREAM). */
void fake_peer_reset(quiche_conn *fc, uint64_t id, uint64_t code);

/* The peer stops reading stream id (STOP_SENDING). */
void fake_peer_stop(quiche_conn *fc, uint64_t id, uint64_t code);

#endif
