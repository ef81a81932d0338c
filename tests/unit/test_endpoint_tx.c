/* Unit tests for the endpoint's send backlog: when the socket buffer is
 * full nothing blocks; the unsent datagrams stay queued (bounded by the
 * batch), no new slot is handed out, the fd is watched for writability,
 * and the connections that waited are processed again once it drained.
 * A datagram socketpair with a small buffer stands in for the UDP socket
 * (loopback UDP never reports a full buffer). */
#include "check.h"
#include "quic/endpoint.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOT 1200
#define BATCH 16

typedef struct fixture {
  quic_endpoint ep;
  h3q_server_stats stats;
  int reader;
  uint8_t next_tag; /* tag of the next datagram the reader expects */
  int received, out_of_order;
  loop_timer *read_timer, *stop_timer;
} fixture;

static void read_all(fixture *f) {
  uint8_t buf[SLOT];
  for (int i = 0; i < 1000; i++) {
    ssize_t n = recv(f->reader, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0)
      return;
    if (buf[0] != f->next_tag)
      f->out_of_order++;
    f->next_tag = (uint8_t)(buf[0] + 1);
    f->received++;
  }
}

/* The reader drains slowly, a few times, so the backlog goes out in
 * several writable rounds; the loop stops once it is empty. */
static void on_read_timer(void *arg) {
  fixture *f = arg;
  read_all(f);
  if (!f->ep.tx_blocked)
    f->ep.lo->break_loop(f->ep.loop);
  else
    f->ep.lo->timer_arm(f->read_timer, 5 * 1000000u);
}

static void on_stop(void *arg) {
  fixture *f = arg;
  f->ep.lo->break_loop(f->ep.loop); /* safety net */
}

static void setup(fixture *f) {
  int fds[2], size = 8192;
  memset(f, 0, sizeof *f);
  CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds) == 0);
  CHECK(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
  f->reader = fds[1];
  f->ep.fd = fds[0];
  f->ep.stats = &f->stats;
  f->ep.lo = &loop_ev_ops;
  f->ep.loop = f->ep.lo->create();
  CHECK(f->ep.loop != NULL);
  CHECK(udp_batch_init(&f->ep.tx, BATCH, SLOT) == 0);
  f->read_timer = f->ep.lo->timer_new(f->ep.loop, on_read_timer, f);
  f->stop_timer = f->ep.lo->timer_new(f->ep.loop, on_stop, f);
}

static void teardown(fixture *f) {
  f->ep.lo->timer_free(f->read_timer);
  f->ep.lo->timer_free(f->stop_timer);
  f->ep.lo->unwatch(f->ep.loop, f->ep.fd);
  f->ep.lo->destroy(f->ep.loop);
  udp_batch_free(&f->ep.tx);
  close(f->ep.fd);
  close(f->reader);
}

/* Queues tagged datagrams until the endpoint refuses a slot. Returns how
 * many were queued. */
static int queue_until_blocked(fixture *f) {
  int queued = 0;
  for (int i = 0; i < 1000; i++) {
    uint8_t *out = endpoint_tx_slot(&f->ep);
    if (!out)
      break;
    memset(out, (uint8_t)queued, SLOT);
    udp_batch_push(&f->ep.tx, SLOT, NULL, 0);
    queued++;
  }
  return queued;
}

static void test_backlog_drains(void) {
  fixture f;
  setup(&f);
  int queued = queue_until_blocked(&f);
  CHECK(f.ep.tx_blocked);
  /* The backlog is the unsent part of one batch: bounded. */
  CHECK(queued == BATCH);
  CHECK(f.ep.tx.count == BATCH && f.ep.tx.sent < BATCH);
  CHECK(endpoint_tx_slot(&f.ep) == NULL);
  endpoint_flush(&f.ep); /* no waiting, no change while blocked */
  CHECK(f.ep.tx_blocked && f.ep.tx.count == BATCH);

  conn a = {.ep = &f.ep}, b = {.ep = &f.ep}, gone = {.ep = &f.ep};
  endpoint_wait_writable(&f.ep, &a);
  endpoint_wait_writable(&f.ep, &gone);
  endpoint_wait_writable(&f.ep, &b);
  endpoint_wait_writable(&f.ep, &a); /* once is enough */
  endpoint_forget(&f.ep, &gone);     /* freed meanwhile */

  f.ep.lo->timer_arm(f.read_timer, 5 * 1000000u);
  f.ep.lo->timer_arm(f.stop_timer, 5000 * 1000000u);
  CHECK(f.ep.lo->run(f.ep.loop) == 0);
  read_all(&f);
  CHECK(!f.ep.tx_blocked && f.ep.tx.count == 0);
  CHECK(f.received == queued && f.out_of_order == 0);
  CHECK(f.stats.packets_dropped == 0);
  CHECK(a.dirty && b.dirty && !gone.dirty);
  CHECK(!a.tx_waiting && !b.tx_waiting && f.ep.tx_waiters == NULL);
  /* Sending works again. */
  CHECK(endpoint_tx_slot(&f.ep) != NULL);
  teardown(&f);
}

int main(void) {
  test_backlog_drains();
  return check_report("test_endpoint_tx");
}
