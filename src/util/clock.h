/* Monotonic time in nanoseconds, and conversions for reporting. */
#ifndef H3Q_UTIL_CLOCK_H
#define H3Q_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A duration in ns as milliseconds (e.g. latencies in reports). */
static inline double clock_ns_to_ms(uint64_t ns) {
  return (double)ns / 1e6;
}

/* A duration in ns as seconds (e.g. timer intervals of libev). */
static inline double clock_ns_to_s(uint64_t ns) {
  return (double)ns / 1e9;
}

#endif
