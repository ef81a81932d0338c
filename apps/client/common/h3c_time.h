/* Monotonic clock helpers shared by both programs. */
#ifndef H3C_TIME_H
#define H3C_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t h3c_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double h3c_ns_to_ms(uint64_t ns) {
  return (double)ns / 1e6;
}
static inline double h3c_ns_to_s(uint64_t ns) {
  return (double)ns / 1e9;
}

#endif
