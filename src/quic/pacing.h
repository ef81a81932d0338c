/* Pacing decisions from quiche's send_info.at (pure, unit-tested).
 *
 * quiche stamps every packet with the time it should leave (CLOCK_MONOTONIC
 * on Linux; its pacer spreads a congestion window over the round trip).
 * h3q sends a packet at once when that time is at most PACE_HORIZON_NS
 * ahead; otherwise the connection holds the packet, stops asking quiche
 * for more and arms a timer. The horizon is the loop's timer resolution
 * (libev's epoll backend sleeps in whole milliseconds): waiting for less
 * would mean spinning, and up to 1 ms of data leaving together (as GSO
 * runs) is what pacing with a millisecond clock can do. SO_TXTIME would
 * let the kernel release each datagram on time, but needs the fq qdisc,
 * which loopback (noqueue) and most default setups lack. */
#ifndef H3Q_QUIC_PACING_H
#define H3Q_QUIC_PACING_H

#include <stdint.h>
#include <time.h>

#define PACE_HORIZON_NS 1000000u

/* A send_info.at as nanoseconds on the clock of clock_now_ns(); 0 (send
 * now) for a zero time, which quiche reports where it cannot convert. */
static inline uint64_t pace_time_ns(const struct timespec *at) {
  if (at->tv_sec < 0 || at->tv_nsec < 0)
    return 0;
  return (uint64_t)at->tv_sec * 1000000000u + (uint64_t)at->tv_nsec;
}

/* How long a packet due at at_ns must still wait at now_ns: 0 means send
 * it now. */
static inline uint64_t pace_wait_ns(uint64_t at_ns, uint64_t now_ns) {
  if (at_ns <= now_ns + PACE_HORIZON_NS)
    return 0;
  return at_ns - now_ns - PACE_HORIZON_NS;
}

#endif
