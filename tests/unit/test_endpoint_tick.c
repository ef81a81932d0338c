/* Unit tests for the endpoint's housekeeping sweep (endpoint_tick): it
 * goes over the connections a slice at a time, every connection once per
 * sweep, resuming where the last slice stopped, and keeps its place when
 * the connection it would visit next is freed in between. Connections
 * here are bare structs on the endpoint's list with a counting tick. */
#include "check.h"
#include "quic/conn.h"
#include "quic/endpoint.h"

#include <stdlib.h>
#include <string.h>

#define CONNS 600

typedef struct session {
  int ticks;
} session;

static void count_tick(void *app, uint64_t now_ns) {
  (void)now_ns;
  ((session *)app)->ticks++;
}

static const conn_app_ops ops = {.tick = count_tick};

static conn conns[CONNS];
static session sessions[CONNS];

/* conns[0] first on the list, as if opened last. */
static void setup(quic_endpoint *ep) {
  memset(ep, 0, sizeof *ep);
  memset(conns, 0, sizeof conns);
  memset(sessions, 0, sizeof sessions);
  ep->app = &ops;
  for (int i = 0; i < CONNS; i++) {
    conns[i].app = &sessions[i];
    conns[i].prev = i ? &conns[i - 1] : NULL;
    conns[i].next = i + 1 < CONNS ? &conns[i + 1] : NULL;
  }
  ep->all = &conns[0];
}

static int ticked(int want) {
  int n = 0;
  for (int i = 0; i < CONNS; i++)
    n += sessions[i].ticks == want;
  return n;
}

static void test_slices(void) {
  quic_endpoint ep;
  setup(&ep);
  CHECK(!endpoint_tick(&ep, 1, 256)); /* 256 of 600 */
  CHECK(ticked(1) == 256);
  CHECK(!endpoint_tick(&ep, 2, 256)); /* 512 */
  CHECK(endpoint_tick(&ep, 3, 256));  /* the last 88: swept */
  CHECK(ticked(1) == CONNS);
  CHECK(!endpoint_tick(&ep, 4, 500)); /* a new sweep from the start */
  CHECK(endpoint_tick(&ep, 5, 500));
  CHECK(ticked(2) == CONNS);
  CHECK(endpoint_tick(&ep, 6, CONNS)); /* all in one */
  CHECK(ticked(3) == CONNS);
}

/* The connection the sweep visits next is unlinked and forgotten (as
 * conn_destroy does): the sweep goes on from the one after it. */
static void test_next_freed(void) {
  quic_endpoint ep;
  setup(&ep);
  CHECK(!endpoint_tick(&ep, 1, 100));
  CHECK(ep.tick_next == &conns[100]);
  conn *gone = &conns[100];
  endpoint_tick_forget(&ep, gone);
  gone->prev->next = gone->next;
  gone->next->prev = gone->prev;
  endpoint_tick_forget(&ep, &conns[300]); /* not the next: no change */
  CHECK(ep.tick_next == &conns[101]);
  CHECK(endpoint_tick(&ep, 2, CONNS));
  CHECK(sessions[100].ticks == 0);
  CHECK(ticked(1) == CONNS - 1);
}

/* No connections, and a connection without a session yet. */
static void test_edges(void) {
  quic_endpoint ep;
  memset(&ep, 0, sizeof ep);
  ep.app = &ops;
  CHECK(endpoint_tick(&ep, 1, 256));
  setup(&ep);
  conns[5].app = NULL;
  CHECK(endpoint_tick(&ep, 1, CONNS));
  CHECK(ticked(1) == CONNS - 1);
}

int main(void) {
  test_slices();
  test_next_freed();
  test_edges();
  return check_report("test_endpoint_tick");
}
