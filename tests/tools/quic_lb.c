/* h3q-quic-lb: a QUIC-LB-aware layer-4 load balancer for tests. It
 * listens on one address and forwards every client datagram to one of N
 * backends, as a load balancer configured for
 * draft-ietf-quic-load-balancers' plaintext algorithm would:
 *
 *   - a datagram whose DCID carries the configured config rotation bits
 *     and the server id of a backend that is up goes to that backend
 *     ("routable": short headers, and long headers once the client uses
 *     a server-issued CID);
 *   - anything else (a client's first Initial with its random DCID,
 *     unknown server ids, the unroutable codepoint 0b111) goes to a
 *     backend chosen by hashing the client's address and port among the
 *     backends that are up (the draft's baseline fallback algorithm).
 *
 * The CID decoding is written here from the draft, independently of the
 * server's (src/quic/cid.c), so the two check each other.
 *
 * Like a NAT, each client address gets its own socket toward the
 * backends, so replies find their client and go back from the listening
 * address; every backend sees the same source address for one client
 * (a Retry token bound to it stays valid at another backend).
 *
 * Commands on stdin, one per line, each answered with one line on
 * stdout: "down I" / "up I" take backend I out of (or back into) the
 * pool, as when a server leaves: its server id becomes unroutable;
 * "stats" prints the counters on one line. Counters are printed at exit
 * too (after --duration, SIGTERM or SIGINT). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/addr.h"

#define MAX_BACKENDS 16
#define MAX_FLOWS 512
#define MAX_DATAGRAM 65536
#define SERVER_ID_MAX 15
#define READS_PER_WAKEUP 64
#define CMD_LINE_MAX 128

typedef struct backend {
  uint8_t sid[SERVER_ID_MAX];
  struct sockaddr_storage addr;
  socklen_t addr_len;
  bool up;
  uint64_t by_cid, by_fallback, replies;
} backend;

typedef struct flow {
  bool used;
  struct sockaddr_storage client;
  socklen_t client_len;
  int fd;              /* toward every backend */
  double last_used_ms; /* the least recently used flow is evicted */
} flow;

typedef struct lb {
  struct sockaddr_storage listen_addr;
  socklen_t listen_len;
  unsigned config_id;
  size_t sid_len;
  double duration_s;
  backend backends[MAX_BACKENDS];
  size_t n_backends;
  int listen_fd;
  flow flows[MAX_FLOWS];
  bool stdin_open;
  char cmd[CMD_LINE_MAX];
  size_t cmd_len;
  /* Datagrams no backend's server id matched, by header form; those to
   * a backend that is down; those dropped (no backend up, no socket). */
  uint64_t unroutable_long, unroutable_short, to_down, dropped;
  uint64_t flows_opened, flows_evicted;
} lb;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- routing ---- */

/* The DCID of a QUIC packet (RFC 8999): after the first byte of a short
 * header (its length is not on the wire: the rest of the datagram is an
 * upper bound), or length-prefixed after the version of a long header. */
static bool find_dcid(const uint8_t *d, size_t len, const uint8_t **dcid,
                      size_t *dcid_len) {
  if (len < 1)
    return false;
  if (!(d[0] & 0x80)) {
    *dcid = d + 1;
    *dcid_len = len - 1;
    return true;
  }
  if (len < 6 || (size_t)6 + d[5] > len)
    return false;
  *dcid = d + 6;
  *dcid_len = d[5];
  return true;
}

/* The backend whose server id the DCID carries (plaintext algorithm: the
 * config rotation in the top 3 bits of the first octet, the server id in
 * the next sid_len octets), or -1. */
static int backend_by_cid(const lb *b, const uint8_t *dcid, size_t dcid_len) {
  if (dcid_len < 1 + b->sid_len || (dcid[0] >> 5) != b->config_id)
    return -1;
  for (size_t i = 0; i < b->n_backends; i++)
    if (memcmp(b->backends[i].sid, dcid + 1, b->sid_len) == 0)
      return (int)i;
  return -1;
}

/* FNV-1a over the client's address and port: the same client 4-tuple
 * always hashes to the same value (the listening side is fixed). */
static uint64_t hash_client(const struct sockaddr_storage *a) {
  const uint8_t *p;
  size_t n;
  uint16_t port;
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
    p = v6->sin6_addr.s6_addr;
    n = sizeof v6->sin6_addr;
    port = v6->sin6_port;
  } else {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
    p = (const uint8_t *)&v4->sin_addr;
    n = sizeof v4->sin_addr;
    port = v4->sin_port;
  }
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  h = (h ^ (port & 0xff)) * 0x100000001b3ULL;
  return (h ^ (port >> 8)) * 0x100000001b3ULL;
}

/* The baseline fallback: the client's hash picks one of the backends
 * that are up, or -1 when none is. */
static int backend_by_hash(const lb *b, const flow *f) {
  size_t up = 0;
  for (size_t i = 0; i < b->n_backends; i++)
    up += b->backends[i].up;
  if (up == 0)
    return -1;
  size_t k = (size_t)(hash_client(&f->client) % up);
  for (size_t i = 0; i < b->n_backends; i++)
    if (b->backends[i].up && k-- == 0)
      return (int)i;
  return -1;
}

static int route(lb *b, const flow *f, const uint8_t *d, size_t len) {
  const uint8_t *dcid;
  size_t dcid_len;
  int i = find_dcid(d, len, &dcid, &dcid_len)
              ? backend_by_cid(b, dcid, dcid_len)
              : -1;
  if (i >= 0 && b->backends[i].up) {
    b->backends[i].by_cid++;
    return i;
  }
  if (i >= 0)
    b->to_down++;
  else if (len > 0 && (d[0] & 0x80))
    b->unroutable_long++;
  else
    b->unroutable_short++;
  i = backend_by_hash(b, f);
  if (i >= 0)
    b->backends[i].by_fallback++;
  return i;
}

/* ---- flows ---- */

static flow *evict_oldest(lb *b) {
  flow *old = &b->flows[0];
  for (size_t i = 1; i < MAX_FLOWS; i++)
    if (b->flows[i].last_used_ms < old->last_used_ms)
      old = &b->flows[i];
  close(old->fd);
  old->used = false;
  b->flows_evicted++;
  return old;
}

static flow *find_flow(lb *b, const struct sockaddr_storage *from,
                       socklen_t len, double now) {
  flow *free_slot = NULL;
  for (size_t i = 0; i < MAX_FLOWS; i++) {
    flow *f = &b->flows[i];
    if (f->used && f->client_len == len && memcmp(&f->client, from, len) == 0)
      return f;
    if (!f->used && !free_slot)
      free_slot = f;
  }
  if (!free_slot)
    free_slot = evict_oldest(b);
  int fd = socket(b->backends[0].addr.ss_family,
                  SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return NULL;
  *free_slot = (flow){.used = true, .client_len = len, .fd = fd};
  memcpy(&free_slot->client, from, len);
  free_slot->last_used_ms = now;
  b->flows_opened++;
  return free_slot;
}

/* ---- forwarding ---- */

static uint8_t rx_buf[MAX_DATAGRAM];

static void forward_up(lb *b, flow *f, size_t len) {
  int i = route(b, f, rx_buf, len);
  if (i < 0) {
    b->dropped++;
    return;
  }
  const backend *be = &b->backends[i];
  if (sendto(f->fd, rx_buf, len, 0, (const struct sockaddr *)&be->addr,
             be->addr_len) < 0)
    b->dropped++;
}

static void read_clients(lb *b) {
  for (int n = 0; n < READS_PER_WAKEUP; n++) {
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t got = recvfrom(b->listen_fd, rx_buf, sizeof rx_buf, 0,
                           (struct sockaddr *)&from, &flen);
    if (got < 0)
      return;
    double now = now_ms();
    flow *f = find_flow(b, &from, flen, now);
    if (!f) {
      b->dropped++;
      continue;
    }
    f->last_used_ms = now;
    forward_up(b, f, (size_t)got);
  }
}

static backend *backend_at(lb *b, const struct sockaddr_storage *a,
                           socklen_t len) {
  for (size_t i = 0; i < b->n_backends; i++)
    if (b->backends[i].addr_len == len &&
        memcmp(&b->backends[i].addr, a, len) == 0)
      return &b->backends[i];
  return NULL;
}

/* Replies go back to the client from the listening address; datagrams
 * from anyone but a backend are dropped. */
static void read_backends(lb *b, flow *f) {
  for (int n = 0; n < READS_PER_WAKEUP; n++) {
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t got = recvfrom(f->fd, rx_buf, sizeof rx_buf, 0,
                           (struct sockaddr *)&from, &flen);
    if (got < 0)
      return;
    backend *be = backend_at(b, &from, flen);
    if (!be)
      continue;
    be->replies++;
    sendto(b->listen_fd, rx_buf, (size_t)got, 0,
           (const struct sockaddr *)&f->client, f->client_len);
  }
}

/* ---- commands and counters ---- */

static void print_stats(const lb *b, const char *prefix) {
  printf("%sunroutable_long=%llu unroutable_short=%llu to_down=%llu "
         "dropped=%llu flows=%llu evicted=%llu",
         prefix, (unsigned long long)b->unroutable_long,
         (unsigned long long)b->unroutable_short,
         (unsigned long long)b->to_down, (unsigned long long)b->dropped,
         (unsigned long long)b->flows_opened,
         (unsigned long long)b->flows_evicted);
  for (size_t i = 0; i < b->n_backends; i++) {
    const backend *be = &b->backends[i];
    printf(" b%zu_up=%d b%zu_cid=%llu b%zu_fallback=%llu b%zu_replies=%llu", i,
           be->up, i, (unsigned long long)be->by_cid, i,
           (unsigned long long)be->by_fallback, i,
           (unsigned long long)be->replies);
  }
  printf("\n");
  fflush(stdout);
}

static void run_command(lb *b, const char *line) {
  char word[16];
  unsigned idx = 0;
  int n = sscanf(line, "%15s %u", word, &idx);
  bool updown = n == 2 && (!strcmp(word, "down") || !strcmp(word, "up"));
  if (n == 1 && !strcmp(word, "stats")) {
    print_stats(b, "stats ");
  } else if (updown && idx < b->n_backends) {
    b->backends[idx].up = word[0] == 'u';
    printf("ok %s %u\n", word, idx);
  } else {
    printf("error: '%s' is not 'down I', 'up I' or 'stats'\n", line);
  }
  fflush(stdout);
}

/* Reads what stdin has and runs each complete line; EOF stops reading. */
static void read_commands(lb *b) {
  char buf[256];
  ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
  if (n <= 0) {
    if (n == 0 || (errno != EINTR && errno != EAGAIN))
      b->stdin_open = false;
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (b->cmd_len < sizeof b->cmd - 1)
        b->cmd[b->cmd_len++] = buf[i];
      continue;
    }
    b->cmd[b->cmd_len] = '\0';
    run_command(b, b->cmd);
    b->cmd_len = 0;
  }
}

/* ---- the loop ---- */

static void run(lb *b) {
  static struct pollfd pfd[2 + MAX_FLOWS];
  static flow *owner[2 + MAX_FLOWS];
  double end = now_ms() + b->duration_s * 1e3;
  while (!stop_requested) {
    double now = now_ms();
    if (now >= end)
      break;
    nfds_t n = 0;
    pfd[n++] = (struct pollfd){.fd = b->listen_fd, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = b->stdin_open ? STDIN_FILENO : -1,
                               .events = POLLIN};
    for (size_t i = 0; i < MAX_FLOWS; i++) {
      if (!b->flows[i].used)
        continue;
      owner[n] = &b->flows[i];
      pfd[n++] = (struct pollfd){.fd = b->flows[i].fd, .events = POLLIN};
    }
    int wait = (int)(end - now) + 1;
    if (poll(pfd, n, wait > 1000 ? 1000 : wait) < 0 && errno != EINTR)
      break;
    if (pfd[1].revents & (POLLIN | POLLHUP))
      read_commands(b);
    for (nfds_t i = 2; i < n; i++)
      if (pfd[i].revents & POLLIN)
        read_backends(b, owner[i]);
    /* Clients last: a new flow evicting an old one cannot close a socket
     * this round still reads. */
    if (pfd[0].revents & POLLIN)
      read_clients(b);
  }
}

/* ---- options ---- */

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* "HEX=HOST:PORT": a server id (all of one length) and its address. */
static int add_backend(lb *b, const char *arg) {
  const char *eq = strchr(arg, '=');
  size_t hex_len = eq ? (size_t)(eq - arg) : 0;
  if (b->n_backends >= MAX_BACKENDS || !eq || hex_len < 2 || hex_len % 2 ||
      hex_len > 2 * SERVER_ID_MAX ||
      (b->n_backends > 0 && hex_len / 2 != b->sid_len))
    return -1;
  backend *be = &b->backends[b->n_backends];
  for (size_t i = 0; i < hex_len / 2; i++) {
    int hi = hex_digit(arg[2 * i]), lo = hex_digit(arg[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    be->sid[i] = (uint8_t)(hi << 4 | lo);
  }
  if (!addr_parse_hostport(eq + 1, &be->addr, &be->addr_len) ||
      (b->n_backends > 0 &&
       be->addr.ss_family != b->backends[0].addr.ss_family))
    return -1;
  be->up = true;
  b->sid_len = hex_len / 2;
  b->n_backends++;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: h3q-quic-lb --backend HEX=HOST:PORT [--backend ...] "
          "[options]\n"
          "Forwards QUIC datagrams to the backend whose QUIC-LB server id "
          "(plaintext\nalgorithm) the DCID carries, else to one chosen by "
          "hashing the client's\naddress. Prints 'h3q-quic-lb listening on "
          "HOST:PORT' once ready.\n\n"
          "  --backend HEX=HOST:PORT  a backend and its server id (hex, "
          "1..15 bytes,\n"
          "                       the same length for all; at most %d)\n"
          "  --listen HOST:PORT   where clients connect (default "
          "127.0.0.1:0, any port)\n"
          "  --config-id N        config rotation bits of routable CIDs, "
          "0..6 (default 0)\n"
          "  --duration S         exit after S seconds (default 300)\n"
          "  -h, --help           this text\n\n"
          "stdin: 'down I', 'up I' (backend I leaves or rejoins the pool), "
          "'stats'.\n",
          MAX_BACKENDS);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (!*s || *end || errno || v > max)
    return -1;
  *out = v;
  return 0;
}

static int apply_option(lb *b, int opt, const char *arg) {
  unsigned long v;
  switch (opt) {
  case 'b':
    return add_backend(b, arg);
  case 'l':
    return addr_parse_hostport(arg, &b->listen_addr, &b->listen_len) ? 0 : -1;
  case 'c':
    if (parse_uint(arg, 6, &v) != 0)
      return -1;
    b->config_id = (unsigned)v;
    return 0;
  case 'd':
    if (parse_uint(arg, 86400, &v) != 0)
      return -1;
    b->duration_s = (double)v;
    return 0;
  default:
    return -1;
  }
}

static const struct option long_opts[] = {
    {"backend", required_argument, 0, 'b'},
    {"listen", required_argument, 0, 'l'},
    {"config-id", required_argument, 0, 'c'},
    {"duration", required_argument, 0, 'd'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static int parse_options(lb *b, int argc, char **argv) {
  addr_from_ip("127.0.0.1", 0, &b->listen_addr, &b->listen_len);
  b->duration_s = 300;
  int opt;
  while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
    if (opt == 'h') {
      usage(stdout);
      exit(0);
    }
    if (opt == '?' || apply_option(b, opt, optarg) != 0) {
      if (opt != '?')
        fprintf(stderr, "h3q-quic-lb: bad value '%s'\n", optarg);
      usage(stderr);
      return -1;
    }
  }
  if (optind != argc || b->n_backends == 0) {
    fprintf(stderr, "h3q-quic-lb: at least one --backend is required\n");
    usage(stderr);
    return -1;
  }
  return 0;
}

static int open_listen(lb *b) {
  struct sockaddr_storage *ss = &b->listen_addr;
  int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)ss, b->listen_len) != 0) {
    fprintf(stderr, "h3q-quic-lb: cannot bind --listen: %s\n", strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  socklen_t len = sizeof *ss;
  getsockname(fd, (struct sockaddr *)ss, &len);
  char host[INET6_ADDRSTRLEN];
  bool v6 = ss->ss_family == AF_INET6;
  const void *ip = v6 ? (const void *)&((struct sockaddr_in6 *)ss)->sin6_addr
                      : (const void *)&((struct sockaddr_in *)ss)->sin_addr;
  uint16_t port = v6 ? ((struct sockaddr_in6 *)ss)->sin6_port
                     : ((struct sockaddr_in *)ss)->sin_port;
  inet_ntop(ss->ss_family, ip, host, sizeof host);
  printf("h3q-quic-lb listening on %s%s%s:%u\n", v6 ? "[" : "", host,
         v6 ? "]" : "", ntohs(port));
  fflush(stdout);
  b->listen_fd = fd;
  return 0;
}

int main(int argc, char **argv) {
  static lb b;
  if (parse_options(&b, argc, argv) != 0)
    return 2;
  if (open_listen(&b) != 0)
    return 1;
  b.stdin_open = true;
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  run(&b);
  print_stats(&b, "final ");
  for (size_t i = 0; i < MAX_FLOWS; i++)
    if (b.flows[i].used)
      close(b.flows[i].fd);
  close(b.listen_fd);
  return 0;
}
