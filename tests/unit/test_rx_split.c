/* Unit tests for quic/rx_split: how many ways the eBPF program splits new
 * clients over (the workers, capped), when the split is off
 * (--steering handoff, H3Q_HEADER_SPLIT=0), and how much one read of the
 * long-header socket takes. The program itself is tested
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

/* The long-header socket's read size follows the cost of its datagrams:
 * a batch of cheap ones, one costly handshake at a time. */
static void test_long_quota(void) {
  CHECK(rx_split_long_quota(0, 32) == 32); /* cost unknown: a batch */
  CHECK(rx_split_long_quota(RX_SPLIT_LONG_BUDGET_NS / 64, 32) ==
        32); /* capped */
  CHECK(rx_split_long_quota(RX_SPLIT_LONG_BUDGET_NS / 4, 32) == 4);
  CHECK(rx_split_long_quota(RX_SPLIT_LONG_BUDGET_NS, 32) == 1);
  CHECK(rx_split_long_quota(10 * RX_SPLIT_LONG_BUDGET_NS, 32) == 1);
  CHECK(rx_split_long_quota(1, 1024) == 1024);
}

static void test_cost_update(void) {
  CHECK(rx_split_cost_update(0, 64000, 32) == 2000); /* the first read */
  /* Up at once: one costly read shortens the next one. */
  CHECK(rx_split_cost_update(2000, 8000000, 32) == 250000);
  /* Down by an eighth of the gap per read. */
  CHECK(rx_split_cost_update(250000, 32 * 2000, 32) == 250000 - 31250 + 250);
  uint64_t c = 250000;
  for (int i = 0; i < 100; i++)
    c = rx_split_cost_update(c, 32 * 2000, 32);
  CHECK(c >= 2000 && c < 2100);
  CHECK(rx_split_cost_update(0, 0, 8) == 1); /* never 0 once measured */
}

int main(void) {
  test_ways();
  test_long_quota();
  test_cost_update();
  return check_report("test_rx_split");
}
