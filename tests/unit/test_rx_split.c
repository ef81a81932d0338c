/* Unit tests for quic/rx_split: how many ways the eBPF program splits new
 * clients over (the workers, capped), and when the split is off
 * (--steering handoff, H3Q_HEADER_SPLIT=0). The program itself is tested
 * on real sockets in test_reuseport_bpf.c, the whole server in
 * tests/integration/test_header_split.py. */
#include "check.h"
#include "io/reuseport_bpf.h"
#include "quic/rx_split.h"

#include <stdlib.h>

static void test_ways(void) {
  h3q_config c;
  h3q_config_init(&c);
  unsetenv("H3Q_HEADER_SPLIT");
  CHECK(rx_split_ways(&c) == 1);
  c.workers = 4;
  CHECK(rx_split_ways(&c) == 4);
  c.workers = REUSEPORT_BPF_SPLIT_WAYS_MAX + 8;
  CHECK(rx_split_ways(&c) == REUSEPORT_BPF_SPLIT_WAYS_MAX);
  c.workers = 2;
  c.steering = H3Q_STEERING_HANDOFF;
  CHECK(rx_split_ways(&c) == 0);
  c.steering = H3Q_STEERING_AUTO;
  setenv("H3Q_HEADER_SPLIT", "0", 1);
  CHECK(rx_split_ways(&c) == 0);
  setenv("H3Q_HEADER_SPLIT", "1", 1);
  CHECK(rx_split_ways(&c) == 2);
  unsetenv("H3Q_HEADER_SPLIT");
}

int main(void) {
  test_ways();
  return check_report("test_rx_split");
}
