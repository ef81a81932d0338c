/* Unit tests for the pacing decision (quic/pacing.h): packets due within
 * the horizon go now, later ones wait until the horizon reaches them, and
 * quiche's timestamps convert to the clock the loop uses. */
#include "check.h"
#include "quic/pacing.h"
#include "util/clock.h"

#include <stdint.h>
#include <time.h>

#define MS 1000000u

static void test_wait(void) {
  uint64_t now = 5000 * (uint64_t)MS;
  CHECK(pace_wait_ns(0, now) == 0);            /* no time: send */
  CHECK(pace_wait_ns(now - MS, now) == 0);     /* late: send */
  CHECK(pace_wait_ns(now, now) == 0);          /* due: send */
  CHECK(pace_wait_ns(now + MS, now) == 0);     /* within the horizon */
  CHECK(pace_wait_ns(now + MS + 1, now) == 1); /* just beyond it */
  CHECK(pace_wait_ns(now + 5 * MS, now) == 4 * MS);
  /* After waiting that long, the packet is within the horizon. */
  uint64_t at = now + 7 * MS + 123;
  CHECK(pace_wait_ns(at, now + pace_wait_ns(at, now)) == 0);
}

static void test_time(void) {
  struct timespec at = {.tv_sec = 3, .tv_nsec = 250};
  CHECK(pace_time_ns(&at) == 3000000250u);
  struct timespec zero = {0, 0};
  CHECK(pace_time_ns(&zero) == 0);
  struct timespec bad = {.tv_sec = -1, .tv_nsec = 0};
  CHECK(pace_time_ns(&bad) == 0);
  /* quiche's times are CLOCK_MONOTONIC, the clock of clock_now_ns(). */
  struct timespec mono;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  uint64_t t = pace_time_ns(&mono), now = clock_now_ns();
  CHECK(t <= now && now - t < 1000 * (uint64_t)MS);
}

int main(void) {
  test_wait();
  test_time();
  return check_report("test_pacing");
}
