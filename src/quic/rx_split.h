/* The header split of the endpoint's receive side (io/header_split.h):
 * with the eBPF steering program in place, long-header packets (new
 * clients' Initials, handshakes, 0-RTT) arrive on a second socket with a
 * small queue, and short-header packets of established connections on the
 * endpoint's own socket. While the long-header socket is busy (its last
 * read took a full batch: a flood), every loop iteration reads the
 * short-header socket first, up to RX_SPLIT_SHORT_BATCHES batches (until
 * it is empty), then one batch of the long-header socket, so a flood of
 * Initials never queues ahead of established connections' packets, and
 * handshakes still get a batch every iteration (never starved). Otherwise
 * the long-header socket is read first, which keeps a client's last
 * handshake packet ahead of its first 1-RTT ones. Without eBPF (refused,
 * or steering = handoff, or H3Q_HEADER_SPLIT=0) there is one socket, as
 * before. */
#ifndef H3Q_QUIC_RX_SPLIT_H
#define H3Q_QUIC_RX_SPLIT_H

#include <stddef.h>

#include "h3q.h"

struct quic_endpoint;

/* Batches of the short-header socket read before each long-header batch:
 * a bound, so that a stream of short-header packets cannot starve
 * handshakes either. */
#define RX_SPLIT_SHORT_BATCHES 4

/* How many of the port's newest endpoints share new clients' Initials by
 * the kernel's 4-tuple hash (the eBPF program's split_ways): the
 * workers, at most REUSEPORT_BPF_SPLIT_WAYS_MAX; 0 when the split is off. */
size_t rx_split_ways(const h3q_config *cfg);

/* Opens the endpoint's long-header socket when its eBPF steering is in
 * place and the split is on, and puts it into the steering map. Without,
 * or on any failure (logged), the endpoint keeps one socket
 * (ep->long_fd stays -1). Call after handoff_open. */
void rx_split_open(struct quic_endpoint *ep, const h3q_config *cfg);

/* Watches the long-header socket on the endpoint's loop (nothing without
 * one). Returns 0, or -1 when the loop refused. */
int rx_split_watch(struct quic_endpoint *ep);

/* The endpoint's own socket's readable callback while the split is on:
 * reads it until it is empty (bounded), and before that one batch of the
 * long-header socket unless that one is busy. */
void rx_split_on_short_readable(struct quic_endpoint *ep);

/* Stops watching and closes the long-header socket (nothing without
 * one). */
void rx_split_close(struct quic_endpoint *ep);

#endif
