/* Unit tests for util/clock: the monotonic clock and its conversions. */
#include "check.h"
#include "util/clock.h"

#include <time.h>

static void test_conversions(void) {
  CHECK(clock_ns_to_ms(0) == 0.0);
  CHECK(clock_ns_to_ms(1500000) == 1.5);
  CHECK(clock_ns_to_s(2500000000u) == 2.5);
  CHECK(clock_ns_to_s(UINT64_C(86400) * 1000000000u) == 86400.0);
}

static void test_monotonic(void) {
  uint64_t a = clock_now_ns();
  struct timespec pause = {0, 2000000}; /* 2 ms */
  nanosleep(&pause, NULL);
  uint64_t b = clock_now_ns();
  CHECK(b >= a + 2000000u);
  CHECK(clock_ns_to_ms(b - a) >= 2.0);
}

int main(void) {
  test_conversions();
  test_monotonic();
  return check_report("test_clock");
}
