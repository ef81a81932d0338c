/* h3q-relay: a UDP impairment relay for tests on loopback, since the
 * kernels here have no tc netem. It sits between QUIC clients and one
 * server and, seeded and bounded in time, loses, duplicates, reorders,
 * delays (with jitter), corrupts, rate-limits and blackholes datagrams
 * above a size (PMTU), and can change the source port it uses toward the
 * server mid-transfer (NAT rebinding), losing the server's first
 * datagrams to the new mapping if asked. Counters are printed at exit.
 *
 * Each client address is a flow with its own socket toward the server (as
 * a NAT has one mapping per client). Every forwarded datagram goes through
 * one time-ordered queue: its release time is arrival + delay + jitter
 * (+ the reorder hold), serialised behind the others of its direction
 * when a rate is set. */
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

#define MAX_FLOWS 64
#define MAX_REBINDS 16
#define MAX_DATAGRAM 65536
/* Datagrams read per socket per wakeup, so one busy direction cannot
 * starve the other or the queue. */
#define READS_PER_WAKEUP 64

enum { UP, DOWN }; /* client -> server, server -> client */
static const char *const dir_name[2] = {"up", "down"};

typedef struct counters {
  uint64_t received, forwarded, bytes_forwarded;
  uint64_t lost, duplicated, reordered, corrupted, too_big, queue_full;
} counters;

typedef struct options {
  double loss, dup, reorder, corrupt; /* probabilities, 0..1 */
  double delay_ms, jitter_ms, reorder_ms;
  double rate_bps;      /* 0: unlimited */
  double max_queue_ms;  /* a rate-limited datagram later than this drops */
  size_t mtu;           /* 0: none; larger datagrams are dropped */
  size_t queue_packets; /* bound of the delay queue */
  bool apply[2];        /* which directions the impairments apply to */
  uint64_t rebind_bytes[MAX_REBINDS]; /* down bytes per flow, ascending */
  size_t n_rebind_bytes;
  double rebind_ms[MAX_REBINDS]; /* since the flow's first datagram */
  size_t n_rebind_ms;
  const char *rebind_addr;    /* NULL: a rebinding changes only the port */
  uint64_t drop_after_rebind; /* server datagrams lost on each new mapping */
  double duration_s;
  uint64_t seed;
  const char *listen_host;
  unsigned listen_port;
  const char *server_host;
  unsigned server_port;
} options;

typedef struct flow {
  bool used;
  struct sockaddr_storage client;
  socklen_t client_len;
  int up_fd;    /* current socket toward the server */
  int stale_fd; /* the one before the last rebinding: read and dropped */
  uint64_t rebind_drops_left; /* of the server's first datagrams to up_fd */
  uint64_t down_bytes;
  double start_ms;
  size_t rebinds;
} flow;

typedef struct packet {
  double release_ms;
  uint64_t order; /* ties keep arrival order */
  int dir;
  flow *f;
  size_t len;
  uint8_t *data;
} packet;

typedef struct relay {
  options o;
  int listen_fd;
  struct sockaddr_storage server;
  socklen_t server_len;
  flow flows[MAX_FLOWS];
  packet *heap;
  size_t heap_len;
  uint64_t next_order;
  double link_free_ms[2]; /* rate limit: when each direction is idle */
  counters c[2];
  uint64_t stale_dropped, rebind_dropped, rebinds, flows_opened, flows_refused;
  uint64_t rng;
} relay;

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

/* splitmix64: small, seedable, good enough for impairment decisions. */
static uint64_t rng_next(relay *r) {
  uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double rng_unit(relay *r) {
  return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static bool chance(relay *r, double p) {
  return p > 0 && rng_unit(r) < p;
}

/* ---- the delay queue: a binary min-heap on (release_ms, order) ---- */

static bool earlier(const packet *a, const packet *b) {
  return a->release_ms < b->release_ms ||
         (a->release_ms == b->release_ms && a->order < b->order);
}

static void heap_push(relay *r, packet p) {
  size_t i = r->heap_len++;
  r->heap[i] = p;
  while (i > 0 && earlier(&r->heap[i], &r->heap[(i - 1) / 2])) {
    packet t = r->heap[i];
    r->heap[i] = r->heap[(i - 1) / 2];
    r->heap[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
}

static packet heap_pop(relay *r) {
  packet top = r->heap[0];
  r->heap[0] = r->heap[--r->heap_len];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < r->heap_len && earlier(&r->heap[l], &r->heap[m]))
      m = l;
    if (l + 1 < r->heap_len && earlier(&r->heap[l + 1], &r->heap[m]))
      m = l + 1;
    if (m == i)
      break;
    packet t = r->heap[i];
    r->heap[i] = r->heap[m];
    r->heap[m] = t;
    i = m;
  }
  return top;
}

/* ---- addresses and sockets ---- */

static void big_buffers(int fd) {
  int size = 8 * 1024 * 1024;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

static int open_listen(relay *r) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (!addr_from_ip(r->o.listen_host, (uint16_t)r->o.listen_port, &ss, &len)) {
    fprintf(stderr, "h3q-relay: --listen: '%s' is not an IP address\n",
            r->o.listen_host);
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0) {
    fprintf(stderr, "h3q-relay: cannot bind %s:%u: %s\n", r->o.listen_host,
            r->o.listen_port, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  big_buffers(fd);
  len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  unsigned port =
      ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
  printf("h3q-relay listening on %s:%u\n", r->o.listen_host, port);
  fflush(stdout);
  r->listen_fd = fd;
  return 0;
}

/* A new socket toward the server: a new source port, as after a NAT
 * rebinding, and from bind_ip when given (an address change). */
static int open_upstream(relay *r, const char *bind_ip) {
  int fd =
      socket(r->server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  big_buffers(fd);
  struct sockaddr_storage local;
  socklen_t local_len;
  if (bind_ip && (!addr_from_ip(bind_ip, 0, &local, &local_len) ||
                  bind(fd, (struct sockaddr *)&local, local_len) != 0)) {
    close(fd);
    return -1;
  }
  if (connect(fd, (struct sockaddr *)&r->server, r->server_len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static flow *find_flow(relay *r, const struct sockaddr_storage *from,
                       socklen_t len) {
  for (size_t i = 0; i < MAX_FLOWS; i++) {
    flow *f = &r->flows[i];
    if (f->used && f->client_len == len && memcmp(&f->client, from, len) == 0)
      return f;
  }
  for (size_t i = 0; i < MAX_FLOWS; i++) {
    flow *f = &r->flows[i];
    if (f->used)
      continue;
    int fd = open_upstream(r, NULL);
    if (fd < 0)
      return NULL;
    memset(f, 0, sizeof *f);
    f->used = true;
    memcpy(&f->client, from, len);
    f->client_len = len;
    f->up_fd = fd;
    f->stale_fd = -1;
    f->start_ms = now_ms();
    r->flows_opened++;
    return f;
  }
  r->flows_refused++;
  return NULL;
}

static bool rebind_due(const relay *r, const flow *f, double now) {
  size_t k = f->rebinds;
  /* The byte and time lists are separate schedules; each entry fires once,
   * k counting both together. */
  for (size_t i = 0; i < r->o.n_rebind_bytes; i++)
    if (i >= k && f->down_bytes >= r->o.rebind_bytes[i])
      return true;
  for (size_t i = 0; i < r->o.n_rebind_ms; i++)
    if (i >= k && now - f->start_ms >= r->o.rebind_ms[i])
      return true;
  return false;
}

/* The client keeps its address; toward the server it now comes from a new
 * port. Datagrams the server still sends to the old port are dropped (the
 * old mapping is gone). */
static void rebind(relay *r, flow *f) {
  int fd = open_upstream(r, r->o.rebind_addr);
  if (fd < 0) {
    fprintf(stderr, "h3q-relay: cannot open a socket for the rebinding\n");
    f->rebinds++; /* skipped, not retried on every datagram */
    return;
  }
  if (f->stale_fd >= 0)
    close(f->stale_fd);
  f->stale_fd = f->up_fd;
  f->up_fd = fd;
  f->rebind_drops_left = r->o.drop_after_rebind;
  f->rebinds++;
  r->rebinds++;
}

/* ---- impairments ---- */

static double link_delay_ms(relay *r) {
  double d = r->o.delay_ms;
  if (r->o.jitter_ms > 0)
    d += rng_unit(r) * r->o.jitter_ms;
  return d;
}

/* Rate limit: the datagram leaves once the link has sent the ones before
 * it. Returns false when that is further away than max_queue_ms (a full
 * bottleneck queue drops it). */
static bool serialise(relay *r, int dir, size_t len, double now,
                      double *release) {
  if (r->o.rate_bps <= 0)
    return true;
  double start = r->link_free_ms[dir] > now ? r->link_free_ms[dir] : now;
  if (start - now > r->o.max_queue_ms)
    return false;
  r->link_free_ms[dir] = start + (double)len * 8.0 * 1e3 / r->o.rate_bps;
  if (*release < r->link_free_ms[dir])
    *release = r->link_free_ms[dir];
  return true;
}

static void enqueue_copy(relay *r, int dir, flow *f, const uint8_t *data,
                         size_t len, double now) {
  counters *c = &r->c[dir];
  bool impair = r->o.apply[dir];
  if (r->heap_len >= r->o.queue_packets) {
    c->queue_full++;
    return;
  }
  double release = now + (impair ? link_delay_ms(r) : 0);
  if (impair && chance(r, r->o.reorder)) {
    release += r->o.reorder_ms; /* later ones overtake it */
    c->reordered++;
  }
  if (impair && !serialise(r, dir, len, now, &release)) {
    c->queue_full++;
    return;
  }
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) {
    c->queue_full++;
    return;
  }
  memcpy(copy, data, len);
  if (impair && len > 0 && chance(r, r->o.corrupt)) {
    copy[rng_next(r) % len] ^= (uint8_t)(1u << (rng_next(r) % 8));
    c->corrupted++;
  }
  heap_push(r, (packet){release, r->next_order++, dir, f, len, copy});
}

/* lossless: the datagram that opened a new mapping (a rebinding) is not
 * dropped: if it were, and the client had nothing else to send, the server
 * could never learn the new port, a stall no server can prevent. */
static void on_datagram(relay *r, int dir, flow *f, const uint8_t *data,
                        size_t len, double now, bool lossless) {
  counters *c = &r->c[dir];
  c->received++;
  if (r->o.apply[dir] && r->o.mtu && len > r->o.mtu) {
    c->too_big++;
    return;
  }
  if (r->o.apply[dir] && !lossless && chance(r, r->o.loss)) {
    c->lost++;
    return;
  }
  enqueue_copy(r, dir, f, data, len, now);
  if (r->o.apply[dir] && chance(r, r->o.dup)) {
    c->duplicated++;
    enqueue_copy(r, dir, f, data, len, now);
  }
}

/* Sends every queued datagram that is due. */
static void release_due(relay *r, double now) {
  while (r->heap_len > 0 && r->heap[0].release_ms <= now) {
    packet p = heap_pop(r);
    ssize_t n;
    if (p.dir == UP)
      n = send(p.f->up_fd, p.data, p.len, 0);
    else
      n = sendto(r->listen_fd, p.data, p.len, 0,
                 (struct sockaddr *)&p.f->client, p.f->client_len);
    if (n >= 0) {
      r->c[p.dir].forwarded++;
      r->c[p.dir].bytes_forwarded += p.len;
      if (p.dir == DOWN)
        p.f->down_bytes += p.len;
    } else {
      r->c[p.dir].queue_full++; /* socket buffer full: a loss */
    }
    free(p.data);
  }
}

/* ---- the loop ---- */

static uint8_t rx_buf[MAX_DATAGRAM];

static void read_clients(relay *r, double now) {
  for (int i = 0; i < READS_PER_WAKEUP; i++) {
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(r->listen_fd, rx_buf, sizeof rx_buf, 0,
                         (struct sockaddr *)&from, &flen);
    if (n < 0)
      return;
    flow *f = find_flow(r, &from, flen);
    if (!f)
      continue;
    bool rebound = rebind_due(r, f, now);
    if (rebound)
      rebind(r, f);
    on_datagram(r, UP, f, rx_buf, (size_t)n, now, rebound);
  }
}

static void read_server(relay *r, flow *f, double now) {
  for (int i = 0; i < READS_PER_WAKEUP; i++) {
    ssize_t n = recv(f->up_fd, rx_buf, sizeof rx_buf, 0);
    if (n < 0)
      return;
    if (f->rebind_drops_left > 0) {
      /* the server's first datagrams to a new mapping: its path probe */
      f->rebind_drops_left--;
      r->rebind_dropped++;
      continue;
    }
    on_datagram(r, DOWN, f, rx_buf, (size_t)n, now, false);
  }
}

static void drain_stale(relay *r, flow *f) {
  for (int i = 0; i < READS_PER_WAKEUP; i++) {
    if (recv(f->stale_fd, rx_buf, sizeof rx_buf, 0) < 0)
      return;
    r->stale_dropped++;
  }
}

static int poll_timeout(const relay *r, double now, double end) {
  double t = end - now;
  if (r->heap_len > 0 && r->heap[0].release_ms - now < t)
    t = r->heap[0].release_ms - now;
  if (t < 0)
    t = 0;
  return (int)(t + 0.999); /* round up: never spin just before a release */
}

static void run(relay *r) {
  struct pollfd pfd[1 + 2 * MAX_FLOWS];
  flow *owner[1 + 2 * MAX_FLOWS];
  double end = now_ms() + r->o.duration_s * 1e3;
  while (!stop_requested) {
    double now = now_ms();
    if (now >= end)
      break;
    nfds_t n = 0;
    pfd[n++] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
    for (size_t i = 0; i < MAX_FLOWS; i++) {
      flow *f = &r->flows[i];
      if (!f->used)
        continue;
      owner[n] = f;
      pfd[n++] = (struct pollfd){.fd = f->up_fd, .events = POLLIN};
      if (f->stale_fd >= 0) {
        owner[n] = f;
        pfd[n++] = (struct pollfd){.fd = f->stale_fd, .events = POLLIN};
      }
    }
    if (poll(pfd, n, poll_timeout(r, now, end)) < 0 && errno != EINTR)
      break;
    now = now_ms();
    if (pfd[0].revents & POLLIN)
      read_clients(r, now);
    for (nfds_t i = 1; i < n; i++) {
      if (!(pfd[i].revents & POLLIN))
        continue;
      if (pfd[i].fd == owner[i]->up_fd)
        read_server(r, owner[i], now);
      else if (pfd[i].fd == owner[i]->stale_fd)
        drain_stale(r, owner[i]);
    }
    release_due(r, now_ms());
  }
}

static void print_counters(const relay *r) {
  FILE *out = stdout;
  for (int d = UP; d <= DOWN; d++) {
    const counters *c = &r->c[d];
    fprintf(out,
            "%s: received=%llu forwarded=%llu bytes=%llu lost=%llu "
            "duplicated=%llu reordered=%llu corrupted=%llu too_big=%llu "
            "queue_full=%llu\n",
            dir_name[d], (unsigned long long)c->received,
            (unsigned long long)c->forwarded,
            (unsigned long long)c->bytes_forwarded, (unsigned long long)c->lost,
            (unsigned long long)c->duplicated, (unsigned long long)c->reordered,
            (unsigned long long)c->corrupted, (unsigned long long)c->too_big,
            (unsigned long long)c->queue_full);
  }
  fprintf(out,
          "flows: opened=%llu refused=%llu rebinds=%llu stale_dropped=%llu "
          "rebind_dropped=%llu queued_at_exit=%zu\n",
          (unsigned long long)r->flows_opened,
          (unsigned long long)r->flows_refused, (unsigned long long)r->rebinds,
          (unsigned long long)r->stale_dropped,
          (unsigned long long)r->rebind_dropped, r->heap_len);
  fflush(out);
}

/* ---- options ---- */

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: h3q-relay --server HOST:PORT [options]\n"
      "Relays UDP datagrams between clients and one server, impairing them.\n"
      "Prints 'h3q-relay listening on HOST:PORT' once ready and counters at "
      "exit\n(after --duration, SIGTERM or SIGINT).\n\n"
      "  --listen HOST:PORT   where clients connect (default 127.0.0.1:0, "
      "any port)\n"
      "  --server HOST:PORT   the server to relay to (required)\n"
      "  --seed N             random seed (default 1): same seed, same "
      "decisions\n"
      "  --duration S         exit after S seconds (default 300)\n"
      "  --loss PCT           drop PCT %% of datagrams\n"
      "  --dup PCT            send PCT %% twice\n"
      "  --reorder PCT        hold PCT %% back by --reorder-ms so later ones "
      "overtake\n"
      "  --reorder-ms MS      (default 5)\n"
      "  --delay MS           one-way delay (default 0)\n"
      "  --jitter MS          plus a uniform random 0..MS (reorders too)\n"
      "  --corrupt PCT        flip one random bit in PCT %% of datagrams\n"
      "  --rate MBIT          limit each direction to MBIT Mbit/s\n"
      "  --max-queue-ms MS    rate-limited datagrams queued longer are "
      "dropped (default 100)\n"
      "  --mtu N              drop datagrams larger than N bytes (PMTU "
      "blackhole)\n"
      "  --queue N            at most N datagrams in flight in the relay "
      "(default 100000)\n"
      "  --direction up|down|both  where impairments apply (default both; "
      "up is client->server)\n"
      "  --rebind-after-bytes N  change the source port toward the server "
      "once N bytes\n"
      "                       went down to that client (repeat up to %d "
      "times, ascending);\n"
      "                       the datagram that moves it is never lost\n"
      "  --rebind-after-ms MS same, MS after the client's first datagram\n"
      "  --drop-after-rebind N  drop the server's first N datagrams to each "
      "new mapping\n"
      "                       (its PATH_CHALLENGE: a lost path probe)\n"
      "  --rebind-addr IP     rebindings also move to this local IP (an "
      "address change,\n"
      "                       e.g. 127.0.0.2)\n"
      "  -h, --help           this text\n",
      MAX_REBINDS);
}

/* HOST:PORT or [V6]:PORT; host points into one of two static buffers
 * (--listen and --server each take one). */
static int parse_hostport(const char *s, const char **host, unsigned *port) {
  static char hosts[2][128];
  static int slot;
  char *h = hosts[slot++ % 2];
  uint16_t p;
  bool bracketed;
  if (!addr_split_hostport(s, h, sizeof hosts[0], &p, &bracketed))
    return -1;
  *host = h;
  *port = p;
  return 0;
}

static int parse_number(const char *name, const char *s, double max,
                        double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v >= 0) || v > max) {
    fprintf(stderr, "h3q-relay: %s: '%s' is not a number in 0..%g\n", name, s,
            max);
    return -1;
  }
  *out = v;
  return 0;
}

enum {
  OPT_LISTEN = 256,
  OPT_SERVER,
  OPT_SEED,
  OPT_DURATION,
  OPT_LOSS,
  OPT_DUP,
  OPT_REORDER,
  OPT_REORDER_MS,
  OPT_DELAY,
  OPT_JITTER,
  OPT_CORRUPT,
  OPT_RATE,
  OPT_MAX_QUEUE_MS,
  OPT_MTU,
  OPT_QUEUE,
  OPT_DIRECTION,
  OPT_REBIND_BYTES,
  OPT_REBIND_MS,
  OPT_REBIND_ADDR,
  OPT_DROP_AFTER_REBIND,
};

static const struct option long_opts[] = {
    {"listen", required_argument, 0, OPT_LISTEN},
    {"server", required_argument, 0, OPT_SERVER},
    {"seed", required_argument, 0, OPT_SEED},
    {"duration", required_argument, 0, OPT_DURATION},
    {"loss", required_argument, 0, OPT_LOSS},
    {"dup", required_argument, 0, OPT_DUP},
    {"reorder", required_argument, 0, OPT_REORDER},
    {"reorder-ms", required_argument, 0, OPT_REORDER_MS},
    {"delay", required_argument, 0, OPT_DELAY},
    {"jitter", required_argument, 0, OPT_JITTER},
    {"corrupt", required_argument, 0, OPT_CORRUPT},
    {"rate", required_argument, 0, OPT_RATE},
    {"max-queue-ms", required_argument, 0, OPT_MAX_QUEUE_MS},
    {"mtu", required_argument, 0, OPT_MTU},
    {"queue", required_argument, 0, OPT_QUEUE},
    {"direction", required_argument, 0, OPT_DIRECTION},
    {"rebind-after-bytes", required_argument, 0, OPT_REBIND_BYTES},
    {"rebind-after-ms", required_argument, 0, OPT_REBIND_MS},
    {"rebind-addr", required_argument, 0, OPT_REBIND_ADDR},
    {"drop-after-rebind", required_argument, 0, OPT_DROP_AFTER_REBIND},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static int set_direction(options *o, const char *s) {
  o->apply[UP] = strcmp(s, "up") == 0 || strcmp(s, "both") == 0;
  o->apply[DOWN] = strcmp(s, "down") == 0 || strcmp(s, "both") == 0;
  if (o->apply[UP] || o->apply[DOWN])
    return 0;
  fprintf(stderr, "h3q-relay: --direction: '%s' is not up, down or both\n", s);
  return -1;
}

static int add_rebind(const char *name, const char *arg, double *list_ms,
                      uint64_t *list_bytes, size_t *n) {
  double v;
  if (*n >= MAX_REBINDS) {
    fprintf(stderr, "h3q-relay: %s: at most %d\n", name, MAX_REBINDS);
    return -1;
  }
  if (parse_number(name, arg, 1e15, &v) != 0)
    return -1;
  if (list_ms)
    list_ms[(*n)++] = v;
  else
    list_bytes[(*n)++] = (uint64_t)v;
  return 0;
}

/* Percentages become probabilities; everything else is taken as given. */
static int apply_option(options *o, int opt, const char *arg) {
  double v = 0;
  switch (opt) {
  case OPT_LISTEN:
    return parse_hostport(arg, &o->listen_host, &o->listen_port);
  case OPT_SERVER:
    return parse_hostport(arg, &o->server_host, &o->server_port);
  case OPT_SEED:
    if (parse_number("--seed", arg, 1.8e19, &v) != 0)
      return -1;
    o->seed = (uint64_t)v;
    return 0;
  case OPT_DURATION:
    return parse_number("--duration", arg, 86400, &o->duration_s);
  case OPT_LOSS:
  case OPT_DUP:
  case OPT_REORDER:
  case OPT_CORRUPT: {
    if (parse_number("a percentage", arg, 100, &v) != 0)
      return -1;
    double *p = opt == OPT_LOSS      ? &o->loss
                : opt == OPT_DUP     ? &o->dup
                : opt == OPT_REORDER ? &o->reorder
                                     : &o->corrupt;
    *p = v / 100.0;
    return 0;
  }
  case OPT_REORDER_MS:
    return parse_number("--reorder-ms", arg, 60000, &o->reorder_ms);
  case OPT_DELAY:
    return parse_number("--delay", arg, 60000, &o->delay_ms);
  case OPT_JITTER:
    return parse_number("--jitter", arg, 60000, &o->jitter_ms);
  case OPT_RATE:
    if (parse_number("--rate", arg, 1e6, &v) != 0)
      return -1;
    o->rate_bps = v * 1e6;
    return 0;
  case OPT_MAX_QUEUE_MS:
    return parse_number("--max-queue-ms", arg, 60000, &o->max_queue_ms);
  case OPT_MTU:
  case OPT_QUEUE:
    if (parse_number(opt == OPT_MTU ? "--mtu" : "--queue", arg, 1e7, &v) != 0)
      return -1;
    *(opt == OPT_MTU ? &o->mtu : &o->queue_packets) = (size_t)v;
    return 0;
  case OPT_DIRECTION:
    return set_direction(o, arg);
  case OPT_REBIND_BYTES:
    return add_rebind("--rebind-after-bytes", arg, NULL, o->rebind_bytes,
                      &o->n_rebind_bytes);
  case OPT_REBIND_MS:
    return add_rebind("--rebind-after-ms", arg, o->rebind_ms, NULL,
                      &o->n_rebind_ms);
  case OPT_REBIND_ADDR:
    o->rebind_addr = arg;
    return 0;
  case OPT_DROP_AFTER_REBIND:
    if (parse_number("--drop-after-rebind", arg, 1e6, &v) != 0)
      return -1;
    o->drop_after_rebind = (uint64_t)v;
    return 0;
  default:
    return -1;
  }
}

static int parse_options(options *o, int argc, char **argv) {
  *o = (options){.reorder_ms = 5,
                 .max_queue_ms = 100,
                 .queue_packets = 100000,
                 .apply = {true, true},
                 .duration_s = 300,
                 .seed = 1,
                 .listen_host = "127.0.0.1"};
  int opt;
  while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
    if (opt == 'h') {
      usage(stdout);
      exit(0);
    }
    if (opt == '?' || apply_option(o, opt, optarg) != 0) {
      if (opt != '?' && (opt == OPT_LISTEN || opt == OPT_SERVER))
        fprintf(stderr, "h3q-relay: '%s' is not HOST:PORT\n", optarg);
      usage(stderr);
      return -1;
    }
  }
  if (optind != argc || !o->server_host) {
    fprintf(stderr, "h3q-relay: --server HOST:PORT is required\n");
    usage(stderr);
    return -1;
  }
  if (o->queue_packets == 0)
    o->queue_packets = 1;
  return 0;
}

int main(int argc, char **argv) {
  static relay r;
  if (parse_options(&r.o, argc, argv) != 0)
    return 2;
  r.rng = r.o.seed;
  if (!addr_from_ip(r.o.server_host, (uint16_t)r.o.server_port, &r.server,
                    &r.server_len)) {
    fprintf(stderr, "h3q-relay: --server: '%s' is not an IP address\n",
            r.o.server_host);
    return 2;
  }
  r.heap = calloc(r.o.queue_packets, sizeof *r.heap);
  if (!r.heap || open_listen(&r) != 0)
    return 1;
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  run(&r);
  print_counters(&r);
  while (r.heap_len > 0)
    free(heap_pop(&r).data);
  for (size_t i = 0; i < MAX_FLOWS; i++) {
    if (!r.flows[i].used)
      continue;
    close(r.flows[i].up_fd);
    if (r.flows[i].stale_fd >= 0)
      close(r.flows[i].stale_fd);
  }
  close(r.listen_fd);
  free(r.heap);
  return 0;
}
