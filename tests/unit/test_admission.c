/* Unit tests for quic/admission.h: when a new connection must first prove
 * its address with a Retry. Always with enable_retry; otherwise from
 * retry_auto_threshold handshakes from unvalidated addresses on, until
 * half of them ended, or while the socket has a backlog; never with a
 * threshold of 0. With a backlog, Retries are rationed per read. */
#include "check.h"
#include "quic/admission.h"

#include <string.h>

#define S(n) ((uint64_t)(n)*1000000000ull) /* seconds in ns */

static void start_n(admission *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    admission_handshake_started(a);
}

static void end_n(admission *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    admission_handshake_ended(a);
}

static void test_threshold_with_hysteresis(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, false, 8, &st);
  CHECK(!admission_wants_retry(&a));
  start_n(&a, 7);
  CHECK(!admission_wants_retry(&a));
  CHECK(st.handshakes_unvalidated == 7);
  start_n(&a, 1);
  CHECK(admission_wants_retry(&a)); /* 8 in progress: under load */
  end_n(&a, 3);
  CHECK(admission_wants_retry(&a)); /* 5: still, until half ended */
  end_n(&a, 1);
  CHECK(!admission_wants_retry(&a)); /* 4 = 8 / 2: the load is over */
  CHECK(st.handshakes_unvalidated == 4);
  start_n(&a, 3);
  CHECK(!admission_wants_retry(&a)); /* 7: below the threshold again */
  start_n(&a, 1);
  CHECK(admission_wants_retry(&a));
  CHECK(a.load_events == 2);
}

static void test_retries_counted_under_load_only(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, false, 2, &st);
  start_n(&a, 2);
  admission_retry_sent(&a);
  admission_retry_sent(&a);
  CHECK(st.retries_under_load == 2);
  admission b;
  admission_init(&b, true, 2, &st);
  CHECK(admission_wants_retry(&b)); /* enable_retry: always */
  admission_retry_sent(&b);
  CHECK(st.retries_under_load == 2); /* not because of load */
}

static void test_zero_means_never(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, false, 0, &st);
  start_n(&a, 100000);
  CHECK(!admission_wants_retry(&a));
  CHECK(st.handshakes_unvalidated == 100000);
  end_n(&a, 100001); /* one too many: stays at 0 */
  CHECK(a.unvalidated == 0 && st.handshakes_unvalidated == 0);
}

static void test_threshold_one(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, false, 1, &st);
  start_n(&a, 1);
  CHECK(admission_wants_retry(&a));
  end_n(&a, 1); /* 0 <= 1 / 2 */
  CHECK(!admission_wants_retry(&a));
}

static void test_backlog_turns_retry_on(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, false, 128, &st);
  CHECK(admission_watches_backlog(&a));
  admission_batch_read(&a, false, 8, S(1));
  CHECK(!admission_wants_retry(&a));
  admission_batch_read(&a, true, 8, S(2));
  CHECK(admission_wants_retry(&a)); /* no handshake counted, a backlog */
  admission_batch_read(&a, false, 8, S(2) + S(1) / 2);
  CHECK(admission_wants_retry(&a)); /* half a second later: still */
  CHECK(admission_take_retry(&a));  /* ... but no budget without backlog */
  admission_batch_read(&a, false, 8, S(3) + 1);
  CHECK(!admission_wants_retry(&a)); /* a second without backlog */
  CHECK(a.load_events == 1);
}

static void test_budget_with_backlog_only(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, true, 0, &st);
  CHECK(admission_watches_backlog(&a)); /* enable_retry alone */
  admission_batch_read(&a, false, 2, S(1));
  int taken = 0;
  for (int i = 0; i < 100; i++)
    taken += admission_take_retry(&a);
  CHECK(taken == 100); /* no backlog: every Initial gets its Retry */
  admission_batch_read(&a, true, 2, S(1));
  taken = 0;
  for (int i = 0; i < 100; i++)
    taken += admission_take_retry(&a);
  CHECK(taken == 2);
  admission_batch_read(&a, true, 2, S(1)); /* the next read: a new budget */
  CHECK(admission_take_retry(&a));
}

/* Shedding (quic/rx_shed.h) only with a backlog and the budget spent. */
static void test_sheds_when_budget_spent(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, true, 128, &st);
  admission_batch_read(&a, false, 2, S(1));
  CHECK(!admission_sheds(&a)); /* no backlog: every Initial is answered */
  admission_batch_read(&a, true, 2, S(1));
  CHECK(!admission_sheds(&a));
  CHECK(admission_take_retry(&a));
  CHECK(!admission_sheds(&a)); /* one Retry left */
  CHECK(admission_take_retry(&a));
  CHECK(admission_sheds(&a));
  admission_batch_read(&a, true, 2, S(1)); /* the next read: a new budget */
  CHECK(!admission_sheds(&a));
}

static void test_zero_ignores_backlog(void) {
  h3q_server_stats st;
  memset(&st, 0, sizeof st);
  admission a;
  admission_init(&a, false, 0, &st);
  CHECK(!admission_watches_backlog(&a));
  admission_batch_read(&a, true, 8, S(1));
  CHECK(!admission_wants_retry(&a)); /* 0 = never: no Retry at all */
}

int main(void) {
  test_backlog_turns_retry_on();
  test_budget_with_backlog_only();
  test_zero_ignores_backlog();
  test_sheds_when_budget_spent();
  test_threshold_with_hysteresis();
  test_retries_counted_under_load_only();
  test_zero_means_never();
  test_threshold_one();
  return check_report("test_admission");
}
