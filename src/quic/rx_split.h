/* The header split of the endpoint's receive side (io/header_split.h):
 * with the eBPF steering program in place, long-header packets (new
 * clients' Initials, handshakes, 0-RTT) arrive on a second socket with a
 * small queue, and short-header packets of established connections on the
 * endpoint's own socket. A read of the long-header socket takes only as
 * many datagrams as fit a time budget at their recent cost (a few
 * handshakes, or a batch of Initials that get a Retry). While it is busy
 * (its last read was full and more waited: a flood), every loop
 * iteration reads the short-header socket first, up to
 * RX_SPLIT_SHORT_BATCHES batches (until it is empty), then one read of
 * the long-header socket, so a flood of Initials never queues ahead of
 * established connections' packets, nor holds them up for longer than the
 * budget, and handshakes still get a read every iteration (never
 * starved). Otherwise
 * the long-header socket is read first, which keeps a client's last
 * handshake packet ahead of its first 1-RTT ones. Without eBPF (refused,
 * or steering = handoff, or H3Q_HEADER_SPLIT=0) there is one socket, as
 * before. */
#ifndef H3Q_QUIC_RX_SPLIT_H
#define H3Q_QUIC_RX_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "h3q.h"

struct quic_endpoint;

/* Batches of the short-header socket read before each long-header batch:
 * a bound, so that a stream of short-header packets cannot starve
 * handshakes either. */
#define RX_SPLIT_SHORT_BATCHES 4

/* Time one read of the long-header socket may take (its datagrams
 * handled): what an established connection's packet may wait behind it.
 * Initials answered with a Retry or dropped cost microseconds each, a
 * full handshake (with Retry off) a quarter of a millisecond: a whole
 * batch of those held established connections up for ~10 ms. 100 µs
 * keeps a normal client's p99 under an Initial flood within 2x of idle
 * (0.25-0.4 ms idle, README Reliability); 250 µs did not quite. */
#define RX_SPLIT_LONG_BUDGET_NS 100000u

/* How many long-header datagrams to read next, given the recent cost of
 * one (ns, including its share of the read): RX_SPLIT_LONG_BUDGET_NS
 * worth, at least 1 and at most cap. An unknown cost (0) means cap. */
size_t rx_split_long_quota(uint64_t cost_ns, size_t cap);

/* The recent cost of one long-header datagram, after a read that spent
 * spent_ns on n datagrams (n > 0): this read's cost when it is higher
 * than avg_ns (the cost so far, 0: none yet), else avg_ns moved an eighth
 * of the way down to it. Up at once, down slowly: one costly read makes
 * the next ones short. */
uint64_t rx_split_cost_update(uint64_t avg_ns, uint64_t spent_ns, size_t n);

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
