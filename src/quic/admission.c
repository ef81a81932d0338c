#include "quic/admission.h"

#include "util/log.h"

/* How long Retry stays in force after the last read that left a
 * backlog. */
#define PRESSURE_HOLD_NS 1000000000ull

/* Powers of two: the 1st, 2nd, 4th, 8th... time, so a load that comes and
 * goes for hours logs a few dozen lines, not one per flood. */
static bool worth_logging(uint64_t n) {
  return (n & (n - 1)) == 0;
}

/* Under load from auto_at handshakes on, until half of them completed or
 * timed out: at the threshold itself the decision does not flip with
 * every handshake that starts or ends. */
static void update_load(admission *a) {
  if (a->auto_at == 0)
    return;
  if (!a->under_load && a->unvalidated >= a->auto_at) {
    a->under_load = true;
    a->load_events++;
    if (worth_logging(a->load_events))
      LOG_WARN("under load: %zu handshakes from unvalidated addresses "
               "(retry_auto_threshold %zu); new clients get a Retry first "
               "(%llu times so far)",
               a->unvalidated, a->auto_at, (unsigned long long)a->load_events);
  } else if (a->under_load && a->unvalidated <= a->auto_at / 2) {
    a->under_load = false;
    if (worth_logging(a->load_events))
      LOG_INFO("load over: %zu handshakes from unvalidated addresses",
               a->unvalidated);
  }
}

static bool under_pressure(const admission *a) {
  return a->now_ns < a->pressure_until_ns;
}

void admission_init(admission *a, bool retry_always, size_t auto_at,
                    h3q_server_stats *stats) {
  a->retry_always = retry_always;
  a->auto_at = auto_at;
  a->unvalidated = 0;
  a->under_load = false;
  a->load_events = 0;
  a->backlog = false;
  a->retry_budget = 0;
  a->now_ns = 0;
  a->pressure_until_ns = 0;
  a->stats = stats;
}

bool admission_wants_retry(const admission *a) {
  return a->retry_always || a->under_load || under_pressure(a);
}

bool admission_watches_backlog(const admission *a) {
  return a->retry_always || a->auto_at;
}

void admission_batch_read(admission *a, bool backlog, size_t budget,
                          uint64_t now_ns) {
  a->backlog = backlog;
  a->retry_budget = budget;
  a->now_ns = now_ns;
  if (!backlog || !a->auto_at || a->retry_always)
    return; /* nothing to switch on */
  if (!under_pressure(a)) {
    a->load_events++;
    if (worth_logging(a->load_events))
      LOG_WARN("under load: the socket's receive queue has a backlog; new "
               "clients get a Retry first (%llu times so far)",
               (unsigned long long)a->load_events);
  }
  a->pressure_until_ns = now_ns + PRESSURE_HOLD_NS;
}

bool admission_take_retry(admission *a) {
  if (!a->backlog)
    return true;
  if (a->retry_budget == 0)
    return false;
  a->retry_budget--;
  return true;
}

bool admission_sheds(const admission *a) {
  return a->backlog && a->retry_budget == 0;
}

void admission_retry_sent(admission *a) {
  if (!a->retry_always)
    a->stats->retries_under_load++;
}

void admission_handshake_started(admission *a) {
  a->unvalidated++;
  a->stats->handshakes_unvalidated = a->unvalidated;
  update_load(a);
}

void admission_handshake_ended(admission *a) {
  if (a->unvalidated == 0)
    return; /* unbalanced call: a bug, but never below zero */
  a->unvalidated--;
  a->stats->handshakes_unvalidated = a->unvalidated;
  update_load(a);
}
