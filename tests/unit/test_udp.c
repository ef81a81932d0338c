/* Unit tests for io/udp: connected sockets (h3q-client's path) next to the
 * bound ones, ICMP errors on receive, sending without waiting when the
 * socket buffer fills, grouping datagrams into GSO runs and falling back
 * when the kernel refuses GSO, splitting coalesced (GRO) receive
 * buffers, and the size of the receive queue. Only loopback and
 * socketpairs are used. */
#include "check.h"
#include "io/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DGRAM 1200

/* Waits up to 1 s for fd to have something to read (or an error). */
static bool wait_readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 1000) == 1;
}

/* Queues one datagram whose bytes are all tag. */
static void push_tagged(udp_batch *b, uint8_t tag, size_t len,
                        const struct sockaddr *to, socklen_t to_len) {
  memset(udp_batch_buf(b, b->count), tag, len);
  udp_batch_push(b, len, to, to_len);
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Reads until want datagrams arrived (bounded by waits) and checks that
 * datagram i carries tag first_tag + i. Returns how many arrived. */
static int recv_tagged(int fd, udp_batch *b, int want, uint8_t first_tag,
                       int *icmp) {
  int got = 0;
  for (int waits = 0; got < want && waits < 5; waits++) {
    if (!wait_readable(fd))
      continue;
    int n =
        icmp ? udp_recv_batch_connected(fd, b, icmp) : udp_recv_batch(fd, b);
    CHECK(n >= 0);
    for (int i = 0; i < n; i++, got++)
      CHECK(b->msgs[i].msg_len > 0 &&
            udp_batch_buf(b, (size_t)i)[0] == (uint8_t)(first_tag + got));
  }
  return got;
}

static void test_connected_roundtrip(void) {
  char err[128] = "";
  struct sockaddr_storage srv_addr, cli_addr, other_addr;
  socklen_t srv_len, cli_len, other_len;
  int srv = udp_open("127.0.0.1", 0, &srv_addr, &srv_len, err, sizeof err);
  int other =
      udp_open("127.0.0.1", 0, &other_addr, &other_len, err, sizeof err);
  int cli = udp_open_connected((struct sockaddr *)&srv_addr, srv_len, &cli_addr,
                               &cli_len, err, sizeof err);
  CHECK(srv >= 0 && other >= 0 && cli >= 0);
  CHECK(cli_addr.ss_family == AF_INET && port_of(&cli_addr) != 0);

  udp_batch b;
  CHECK(udp_batch_init(&b, 8, DGRAM) == 0);
  /* Client to server without addresses: the socket is connected. */
  for (uint8_t i = 0; i < 3; i++)
    push_tagged(&b, (uint8_t)(10 + i), 100 + i, NULL, 0);
  CHECK(udp_flush_nowait(cli, &b) == 0);
  CHECK(b.count == 0 && b.sent == 0);
  CHECK(recv_tagged(srv, &b, 3, 10, NULL) == 3);
  CHECK(b.msgs[0].msg_len == 100);
  CHECK(port_of(&b.addrs[0]) == port_of(&cli_addr));

  /* A stranger's datagram is filtered; the server's reply arrives. */
  push_tagged(&b, 99, 50, (struct sockaddr *)&cli_addr, cli_len);
  CHECK(udp_flush_nowait(other, &b) == 0);
  push_tagged(&b, 20, 60, (struct sockaddr *)&cli_addr, cli_len);
  CHECK(udp_flush_nowait(srv, &b) == 0);
  int icmp = 0;
  CHECK(recv_tagged(cli, &b, 1, 20, &icmp) == 1);
  CHECK(b.msgs[0].msg_len == 60);
  CHECK(icmp == 0);
  CHECK(udp_recv_batch_connected(cli, &b, &icmp) == 0); /* nothing else */

  udp_batch_free(&b);
  close(cli);
  close(other);
  close(srv);
}

static void test_icmp_errors(void) {
  char err[128] = "";
  struct sockaddr_storage dead_addr, cli_addr;
  socklen_t dead_len, cli_len;
  /* A port that was just free: nothing listens there any more. */
  int dead = udp_open("127.0.0.1", 0, &dead_addr, &dead_len, err, sizeof err);
  CHECK(dead >= 0);
  close(dead);
  int cli = udp_open_connected((struct sockaddr *)&dead_addr, dead_len,
                               &cli_addr, &cli_len, err, sizeof err);
  CHECK(cli >= 0);
  udp_batch b;
  CHECK(udp_batch_init(&b, 4, DGRAM) == 0);

  /* The connected variant skips the port-unreachable error, reports it. */
  push_tagged(&b, 1, 10, NULL, 0);
  CHECK(udp_flush_nowait(cli, &b) == 0);
  CHECK(wait_readable(cli));
  int icmp = 0;
  CHECK(udp_recv_batch_connected(cli, &b, &icmp) == 0);
  CHECK(icmp == ECONNREFUSED);

  /* The plain one treats it as a socket error. */
  push_tagged(&b, 2, 10, NULL, 0);
  CHECK(udp_flush_nowait(cli, &b) == 0);
  CHECK(wait_readable(cli));
  errno = 0;
  CHECK(udp_recv_batch(cli, &b) == -1 && errno == ECONNREFUSED);

  udp_batch_free(&b);
  close(cli);
}

/* A datagram socketpair whose writer fds[0] has a small send buffer fills
 * up after a few unread datagrams: a reproducible full socket buffer. */
typedef struct pair {
  int fds[2];
  udp_batch tx, rx;
} pair;

/* Opens a pair and queues datagrams tagged 0..19 that do not all fit. */
static void pair_open_blocked(pair *p) {
  int size = 8192;
  CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, p->fds) == 0);
  CHECK(setsockopt(p->fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
  CHECK(udp_batch_init(&p->tx, 32, DGRAM) == 0);
  CHECK(udp_batch_init(&p->rx, 32, DGRAM) == 0);
  for (uint8_t i = 0; i < 20; i++)
    push_tagged(&p->tx, i, DGRAM, NULL, 0);
  CHECK(udp_flush_nowait(p->fds[0], &p->tx) == 1);
  CHECK(p->tx.sent > 0 && p->tx.sent < 20 && p->tx.count == 20);
}

static void pair_close(pair *p) {
  udp_batch_free(&p->tx);
  udp_batch_free(&p->rx);
  close(p->fds[0]);
  close(p->fds[1]);
}

static void test_nowait_keeps_the_rest(void) {
  pair p;
  pair_open_blocked(&p);
  /* More may be queued behind the blocked ones. */
  for (uint8_t i = 20; i < 25; i++)
    push_tagged(&p.tx, i, DGRAM, NULL, 0);
  int got = 0, rc = 1;
  for (int round = 0; round < 50 && (rc != 0 || got < 25); round++) {
    int n = udp_recv_batch(p.fds[1], &p.rx);
    CHECK(n >= 0);
    for (int i = 0; i < n; i++, got++)
      CHECK(udp_batch_buf(&p.rx, (size_t)i)[0] == (uint8_t)got);
    if (rc != 0)
      rc = udp_flush_nowait(p.fds[0], &p.tx);
  }
  CHECK(rc == 0 && got == 25);
  CHECK(p.tx.count == 0 && p.tx.sent == 0);
  pair_close(&p);
}

/* udp_recv_batch_upto reads no more than asked (both the recvmmsg and
 * the one-call-per-message paths), the rest stays queued in order, and 0
 * or more than the batch holds mean the whole batch. */
static void test_recv_upto(void) {
  for (int single = 0; single < 2; single++) {
    int fds[2];
    udp_batch rx;
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds) == 0);
    CHECK(udp_batch_init(&rx, 4, DGRAM) == 0);
    if (single)
      udp_batch_single(&rx);
    uint8_t d[16];
    for (uint8_t i = 0; i < 9; i++) {
      memset(d, i, sizeof d);
      CHECK(send(fds[0], d, sizeof d, 0) == (ssize_t)sizeof d);
    }
    const size_t asks[] = {2, 1, 0, 99};
    const int want[] = {2, 1, 4, 2};
    uint8_t next = 0;
    for (size_t k = 0; k < 4; k++) {
      int n = udp_recv_batch_upto(fds[1], &rx, asks[k]);
      CHECK(n == want[k]);
      for (int i = 0; i < n; i++, next++)
        CHECK(udp_batch_buf(&rx, (size_t)i)[0] == next);
    }
    CHECK(next == 9);
    CHECK(udp_recv_batch_upto(fds[1], &rx, 2) == 0); /* empty */
    udp_batch_free(&rx);
    close(fds[0]);
    close(fds[1]);
  }
}

static void test_open_connected_errors(void) {
  char err[128] = "";
  struct sockaddr_storage local;
  socklen_t local_len;
  struct sockaddr_in short_addr = {.sin_family = AF_INET};
  CHECK(udp_open_connected((struct sockaddr *)&short_addr, 2, &local,
                           &local_len, err, sizeof err) == -1);
  CHECK(strncmp(err, "connect: ", 9) == 0);
  struct sockaddr unknown = {.sa_family = AF_MAX};
  CHECK(udp_open_connected(&unknown, sizeof unknown, &local, &local_len, err,
                           sizeof err) == -1);
  CHECK(strncmp(err, "socket: ", 8) == 0);
}

static struct sockaddr_in addr_v4(uint32_t host, uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(host);
  return a;
}

/* Queues n datagrams of len bytes to a. */
static void push_n(udp_batch *b, size_t n, size_t len,
                   const struct sockaddr_in *a) {
  for (size_t i = 0; i < n; i++)
    push_tagged(b, (uint8_t)b->count, len, (const struct sockaddr *)a,
                sizeof *a);
}

/* Splits the queue into runs; returns how many, their lengths in runs. */
static size_t runs_of(const udp_batch *b, size_t *runs, size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < b->count && k < max; k++) {
    runs[k] = udp_batch_run_length(b, i);
    CHECK(runs[k] > 0);
    i += runs[k] ? runs[k] : 1;
  }
  return k;
}

static void test_gso_runs(void) {
  udp_batch b;
  CHECK(udp_batch_init(&b, 128, 1350) == 0);
  b.gso = true;
  struct sockaddr_in a = addr_v4(0x7f000001, 4433);
  struct sockaddr_in other = addr_v4(0x7f000001, 4434);
  push_n(&b, 3, 1200, &a);
  push_n(&b, 1, 700, &a); /* shorter: ends the run */
  push_n(&b, 2, 1200, &a);
  push_n(&b, 2, 1200, &other); /* another destination */
  push_n(&b, 1, 1300, &other); /* longer than the run's size */
  push_n(&b, 1, 1300, &other);
  size_t runs[16];
  size_t want[] = {4, 2, 2, 2};
  CHECK(runs_of(&b, runs, 16) == 4);
  for (size_t k = 0; k < 4; k++)
    CHECK(runs[k] == want[k]);
  CHECK(udp_batch_run_length(&b, b.count) == 0);

  /* Without GSO every datagram is its own message. */
  b.gso = false;
  CHECK(runs_of(&b, runs, 16) == b.count);
  CHECK(runs[0] == 1);
  udp_batch_free(&b);
}

static void test_gso_limits(void) {
  udp_batch b;
  CHECK(udp_batch_init(&b, 128, 1350) == 0);
  b.gso = true;
  struct sockaddr_in a = addr_v4(0x7f000001, 4433);
  /* 64 KiB: 48 full-size datagrams of 1350 bytes fit one send. */
  push_n(&b, 60, 1350, &a);
  size_t runs[16];
  CHECK(runs_of(&b, runs, 16) == 2);
  CHECK(runs[0] == UDP_GSO_MAX_BYTES / 1350 && runs[0] == 48);
  CHECK(runs[1] == 12);
  /* Small datagrams: at most 64 segments. */
  b.count = 0;
  push_n(&b, 100, 100, &a);
  CHECK(runs_of(&b, runs, 16) == 2);
  CHECK(runs[0] == UDP_GSO_MAX_SEGMENTS && runs[1] == 36);
  /* A datagram too large to pair with anything goes alone. */
  udp_batch_free(&b);
  CHECK(udp_batch_init(&b, 4, 65000) == 0);
  b.gso = true;
  push_n(&b, 2, 40000, &a);
  CHECK(runs_of(&b, runs, 16) == 2 && runs[0] == 1);
  udp_batch_free(&b);
}

/* Two bound loopback sockets; the sender's batch tries GSO. */
typedef struct udp_pair {
  int tx_fd, rx_fd;
  struct sockaddr_storage rx_addr;
  socklen_t rx_len;
  udp_batch tx, rx;
} udp_pair;

static void udp_pair_open(udp_pair *p) {
  char err[128] = "";
  struct sockaddr_storage tx_addr;
  socklen_t tx_len;
  p->tx_fd = udp_open("127.0.0.1", 0, &tx_addr, &tx_len, err, sizeof err);
  p->rx_fd = udp_open("127.0.0.1", 0, &p->rx_addr, &p->rx_len, err, sizeof err);
  CHECK(p->tx_fd >= 0 && p->rx_fd >= 0);
  CHECK(udp_batch_init(&p->tx, 64, DGRAM) == 0);
  CHECK(udp_batch_init(&p->rx, 64, DGRAM) == 0);
  udp_batch_enable_gso(&p->tx, p->tx_fd);
}

static void udp_pair_close(udp_pair *p) {
  udp_batch_free(&p->tx);
  udp_batch_free(&p->rx);
  close(p->tx_fd);
  close(p->rx_fd);
}

/* Sends 10 full datagrams and a short one; all arrive, in order. */
static void send_run_and_check(udp_pair *p) {
  for (uint8_t i = 0; i < 10; i++)
    push_tagged(&p->tx, i, DGRAM, (struct sockaddr *)&p->rx_addr, p->rx_len);
  push_tagged(&p->tx, 10, 500, (struct sockaddr *)&p->rx_addr, p->rx_len);
  CHECK(udp_flush_nowait(p->tx_fd, &p->tx) == 0);
  CHECK(p->tx.count == 0 && p->tx.sent == 0);
  CHECK(recv_tagged(p->rx_fd, &p->rx, 11, 0, NULL) == 11);
}

static void test_gso_send(void) {
  udp_pair p;
  udp_pair_open(&p);
  bool had_gso = p.tx.gso;
  send_run_and_check(&p);
  CHECK(p.tx.gso == had_gso); /* loopback takes GSO when the kernel has it */
  udp_pair_close(&p);
}

/* The kernel refuses GSO on a socket without UDP checksums (EINVAL): the
 * run goes out datagram by datagram and the batch remembers. */
static void test_gso_fallback(void) {
  udp_pair p;
  udp_pair_open(&p);
  int on = 1;
  CHECK(setsockopt(p.tx_fd, SOL_SOCKET, SO_NO_CHECK, &on, sizeof on) == 0);
  send_run_and_check(&p);
  CHECK(!p.tx.gso);
  send_run_and_check(&p); /* and keeps working without */
  udp_pair_close(&p);
}

/* One recvmsg/sendmsg per message (udp_batch_single, the fallback when
 * the kernel lacks recvmmsg/sendmmsg): the same datagrams arrive, in
 * order, with GSO runs too; the buffer sizes set are read back. */
static void test_single_syscalls(void) {
  udp_pair p;
  udp_pair_open(&p);
  udp_batch_single(&p.tx);
  udp_batch_single(&p.rx);
  CHECK(p.tx.single && p.rx.single);
  send_run_and_check(&p);
  send_run_and_check(&p);
  int rcv = 0, snd = 0;
  udp_set_buffer_sizes(p.rx_fd, 65536, 0, &rcv, &snd);
  CHECK(rcv >= 65536 && rcv <= 2 * 65536); /* Linux reports it doubled */
  CHECK(snd > 0);                          /* left as it was */
  udp_set_buffer_sizes(p.rx_fd, 0, 0, &rcv, &snd);
  CHECK(rcv >= 65536 && rcv <= 2 * 65536);
  udp_pair_close(&p);
}

/* Writes a UDP_GRO control message with segment size seg into message
 * i's control buffer, as the kernel would. */
static void fake_gro_cmsg(udp_batch *b, size_t i, int seg, size_t len) {
  static union {
    struct cmsghdr align;
    uint8_t buf[CMSG_SPACE(sizeof(int))];
  } ctrl;
  struct msghdr *h = &b->msgs[i].msg_hdr;
  memset(h, 0, sizeof *h);
  h->msg_control = ctrl.buf;
  h->msg_controllen = sizeof ctrl.buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(h);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_GRO;
  cm->cmsg_len = CMSG_LEN(sizeof seg);
  memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  b->msgs[i].msg_len = (unsigned)len;
}

/* Splits message 0 of b and checks the lengths against want (0-ended) and
 * that each datagram starts where the previous one ended. */
static void check_split(udp_batch *b, const size_t *want) {
  udp_segments s;
  udp_segments_init(&s, b, 0);
  uint8_t *data, *expect = udp_batch_buf(b, 0);
  size_t len, k = 0;
  while (udp_segments_next(&s, &data, &len)) {
    CHECK(want[k] != 0 && len == want[k] && data == expect);
    expect += len;
    if (want[k])
      k++;
  }
  CHECK(want[k] == 0);
}

static void test_gro_split(void) {
  udp_batch b;
  CHECK(udp_batch_init(&b, 2, 4000) == 0);
  b.gro = true;
  fake_gro_cmsg(&b, 0, 1000, 2500);
  check_split(&b, (size_t[]){1000, 1000, 500, 0});
  fake_gro_cmsg(&b, 0, 1000, 3000); /* no short tail */
  check_split(&b, (size_t[]){1000, 1000, 1000, 0});
  fake_gro_cmsg(&b, 0, 1350, 700); /* one datagram, shorter than seg */
  check_split(&b, (size_t[]){700, 0});
  fake_gro_cmsg(&b, 0, 0, 700); /* nonsense size: one datagram */
  check_split(&b, (size_t[]){700, 0});
  fake_gro_cmsg(&b, 0, -5, 700);
  check_split(&b, (size_t[]){700, 0});
  fake_gro_cmsg(&b, 0, 1000, 0); /* empty: nothing */
  check_split(&b, (size_t[]){0});
  /* Without GRO a size in the control data is not looked at. */
  b.gro = false;
  fake_gro_cmsg(&b, 0, 1000, 2500);
  check_split(&b, (size_t[]){2500, 0});
  /* No control data at all. */
  b.gro = true;
  memset(&b.msgs[0].msg_hdr, 0, sizeof b.msgs[0].msg_hdr);
  b.msgs[0].msg_len = 1200;
  check_split(&b, (size_t[]){1200, 0});
  udp_batch_free(&b);
}

/* A GSO run to a GRO socket: however the kernel hands it over (one
 * coalesced buffer on loopback), the datagrams come out as sent. */
static void test_gro_receive(void) {
  udp_pair p;
  udp_pair_open(&p);
  udp_batch_free(&p.rx);
  CHECK(udp_batch_init(&p.rx, 8, UDP_GRO_BUFFER) == 0);
  bool gro = udp_batch_enable_gro(&p.rx, p.rx_fd);
  for (uint8_t i = 0; i < 30; i++)
    push_tagged(&p.tx, i, i < 29 ? DGRAM : 300, (struct sockaddr *)&p.rx_addr,
                p.rx_len);
  CHECK(udp_flush_nowait(p.tx_fd, &p.tx) == 0);
  size_t got = 0, messages = 0;
  for (int waits = 0; got < 30 && waits < 5; waits++) {
    if (!wait_readable(p.rx_fd))
      continue;
    int n = udp_recv_batch(p.rx_fd, &p.rx);
    CHECK(n >= 0);
    for (int i = 0; i < n; i++, messages++) {
      udp_segments s;
      udp_segments_init(&s, &p.rx, (size_t)i);
      uint8_t *d;
      size_t len;
      for (; udp_segments_next(&s, &d, &len); got++)
        CHECK(d[0] == got && len == (got < 29 ? DGRAM : 300));
    }
  }
  CHECK(got == 30);
  if (gro && p.tx.gso)
    CHECK(messages < 30); /* coalesced */
  /* A batch whose buffers cannot hold 64 KiB refuses GRO. */
  udp_batch small;
  CHECK(udp_batch_init(&small, 1, DGRAM) == 0);
  CHECK(!udp_batch_enable_gro(&small, p.rx_fd) && !small.gro);
  udp_batch_free(&small);
  udp_pair_close(&p);
}

static struct sockaddr_in loopback(const char *ip, uint16_t port_be) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = port_be};
  CHECK(inet_pton(AF_INET, ip, &a.sin_addr) == 1);
  return a;
}

/* A wildcard-bound socket learns each datagram's destination and answers
 * from it: the client, connected to 127.0.0.2, receives the answer only
 * if it leaves from 127.0.0.2. */
static void test_pktinfo_roundtrip(void) {
  char err[128] = "";
  struct sockaddr_storage srv_addr, cli_addr;
  socklen_t srv_len, cli_len;
  int srv = udp_open("0.0.0.0", 0, &srv_addr, &srv_len, err, sizeof err);
  CHECK(srv >= 0);
  uint16_t port = ((struct sockaddr_in *)&srv_addr)->sin_port;
  struct sockaddr_in target = loopback("127.0.0.2", port);
  int cli = udp_open_connected((struct sockaddr *)&target, sizeof target,
                               &cli_addr, &cli_len, err, sizeof err);
  CHECK(cli >= 0);
  udp_batch rx, tx, crx;
  CHECK(udp_batch_init(&rx, 4, DGRAM) == 0);
  CHECK(udp_batch_init(&tx, 4, DGRAM) == 0);
  CHECK(udp_batch_init(&crx, 4, DGRAM) == 0);
  CHECK(udp_batch_enable_pktinfo(&rx, srv, AF_INET));

  push_tagged(&tx, 1, 100, NULL, 0);
  CHECK(udp_flush_nowait(cli, &tx) == 0);
  CHECK(recv_tagged(srv, &rx, 1, 1, NULL) == 1);
  struct sockaddr_storage local;
  socklen_t local_len;
  CHECK(udp_msg_local_addr(&rx.msgs[0].msg_hdr, AF_INET, port, &local,
                           &local_len));
  CHECK(local_len == sizeof target &&
        memcmp(&local, &target, sizeof target) == 0);

  /* Answer from the learnt address: it reaches the connected client. */
  push_tagged(&tx, 2, 100, (struct sockaddr *)&rx.addrs[0],
              rx.msgs[0].msg_hdr.msg_namelen);
  udp_batch_set_source(&tx, (struct sockaddr *)&local, local_len);
  CHECK(udp_flush_nowait(srv, &tx) == 0);
  CHECK(recv_tagged(cli, &crx, 1, 2, NULL) == 1);

  /* Without pktinfo on the receive batch there is no destination. */
  udp_batch plain;
  CHECK(udp_batch_init(&plain, 4, DGRAM) == 0);
  push_tagged(&tx, 3, 100, NULL, 0);
  CHECK(udp_flush_nowait(cli, &tx) == 0);
  CHECK(recv_tagged(srv, &plain, 1, 3, NULL) == 1);
  CHECK(!udp_msg_local_addr(&plain.msgs[0].msg_hdr, AF_INET, port, &local,
                            &local_len));
  udp_batch_free(&plain);
  udp_batch_free(&rx);
  udp_batch_free(&tx);
  udp_batch_free(&crx);
  close(srv);
  close(cli);
}

/* Datagrams to one peer from two local addresses never share a GSO run. */
static void test_gso_runs_split_by_source(void) {
  udp_batch b;
  CHECK(udp_batch_init(&b, 8, DGRAM) == 0);
  b.gso = true;
  struct sockaddr_in to = loopback("127.0.0.1", htons(9));
  struct sockaddr_in a = loopback("127.0.0.2", 0), c = loopback("127.0.0.3", 0);
  for (int i = 0; i < 4; i++) {
    push_tagged(&b, (uint8_t)i, DGRAM, (struct sockaddr *)&to, sizeof to);
    struct sockaddr_in *src = i < 2 ? &a : &c;
    udp_batch_set_source(&b, (struct sockaddr *)src, sizeof *src);
  }
  CHECK(udp_batch_run_length(&b, 0) == 2);
  CHECK(udp_batch_run_length(&b, 2) == 2);
  udp_batch_free(&b);
}

/* udp_rx_queued sees datagrams waiting in the receive queue (each counted
 * with the kernel's overhead, so at least its payload) and none once they
 * were read. Polled briefly, since delivery on loopback may lag the send. */
static void test_rx_queued(void) {
  udp_pair p;
  udp_pair_open(&p);
  size_t queued = 1;
#ifdef __linux__
  CHECK(udp_rx_queued(p.rx_fd, &queued) && queued == 0);
  for (uint8_t i = 0; i < 5; i++)
    push_tagged(&p.tx, i, DGRAM, (struct sockaddr *)&p.rx_addr, p.rx_len);
  CHECK(udp_flush_nowait(p.tx_fd, &p.tx) == 0);
  for (int tries = 0; tries < 100 && queued < 5 * DGRAM; tries++) {
    CHECK(udp_rx_queued(p.rx_fd, &queued));
    if (queued < 5 * DGRAM)
      usleep(10000);
  }
  CHECK(queued >= 5 * DGRAM);
  CHECK(recv_tagged(p.rx_fd, &p.rx, 5, 0, NULL) == 5);
  CHECK(udp_rx_queued(p.rx_fd, &queued) && queued == 0);
#else
  CHECK(!udp_rx_queued(p.rx_fd, &queued)); /* no SO_MEMINFO to ask */
#endif
  udp_pair_close(&p);
}

/* Server sockets share ports on purpose (SO_REUSEPORT), but two opened
 * on "any port" must not land on one: 500 open at once would collide a
 * few times if the kernel picked their ports. */
#define ANY_PORT_SOCKETS 500
static void test_any_port_is_unshared(void) {
  static int fds[ANY_PORT_SOCKETS];
  static uint8_t seen[65536];
  char err[256];
  int collisions = 0, opened = 0;
  for (int i = 0; i < ANY_PORT_SOCKETS; i++) {
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    fds[i] = udp_open("127.0.0.1", 0, &local, &local_len, err, sizeof err);
    if (fds[i] < 0)
      break;
    opened++;
    uint16_t port = port_of(&local);
    collisions += seen[port];
    seen[port] = 1;
  }
  CHECK(opened == ANY_PORT_SOCKETS);
  CHECK(collisions == 0);
  for (int i = 0; i < opened; i++)
    close(fds[i]);
}

int main(void) {
  test_any_port_is_unshared();
  test_rx_queued();
  test_pktinfo_roundtrip();
  test_gso_runs_split_by_source();
  test_gso_runs();
  test_gso_limits();
  test_gso_send();
  test_gso_fallback();
  test_single_syscalls();
  test_gro_split();
  test_gro_receive();
  test_connected_roundtrip();
  test_icmp_errors();
  test_nowait_keeps_the_rest();
  test_recv_upto();
  test_open_connected_errors();
  return check_report("test_udp");
}
