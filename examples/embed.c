/* h3q inside a program that owns its event loop (here a plain poll() loop;
 * GUI toolkits, libuv, or another server work the same way). The host
 * watches h3q_server_fd next to its own work, calls h3q_server_process
 * when the fd is readable or h3q's timeout has passed, and keeps its own
 * timers: GET /later/:ms is answered by a host timer, outside any h3q
 * callback. SIGINT/SIGTERM stop gracefully: requests already received
 * (also the delayed ones) finish, then the program exits.
 *   embed CERT.pem KEY.pem [PORT] */
#define _POSIX_C_SOURCE 200809L /* poll, sigaction, clock_gettime */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h3q.h"

#define MAX_DELAYED 64
#define MAX_DELAY_MS 10000

static h3q_server *server;

/* The host's own timers: responses to finish at a given time. */
typedef struct delayed {
  h3q_response *res; /* NULL: free slot */
  int64_t due_ms;
  int delay_ms;
} delayed;

static delayed pending[MAX_DELAYED];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig) {
  (void)sig;
  h3q_server_stop(server); /* async-signal-safe */
}

static int hello(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  char body[256];
  int n = snprintf(body, sizeof body, "hello, %s\n",
                   h3q_request_param(req, "name"));
  return h3q_response_send(res, 200, "text/plain", body, (size_t)n);
}

/* The client went away before the host's timer: forget the response. */
static void on_delayed_close(h3q_response *res, bool aborted, void *user) {
  (void)aborted;
  delayed *d = user;
  if (d->res == res)
    d->res = NULL;
}

static int later(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  char *end;
  long ms = strtol(h3q_request_param(req, "ms"), &end, 10);
  if (*end || ms < 0 || ms > MAX_DELAY_MS)
    return H3Q_EBADREQUEST;
  for (size_t i = 0; i < MAX_DELAYED; i++) {
    if (pending[i].res)
      continue;
    pending[i] = (delayed){res, now_ms() + ms, (int)ms};
    h3q_response_on_close(res, on_delayed_close, &pending[i]);
    return H3Q_OK; /* answered later, by the host loop */
  }
  return H3Q_EAGAIN; /* 503: every slot busy */
}

/* Host work, outside h3q_server_process: finishing a response here queues
 * its bytes, and h3q makes its fd readable so that the next poll returns at
 * once and h3q_server_process sends them. */
static void finish_due_responses(void) {
  int64_t now = now_ms();
  for (size_t i = 0; i < MAX_DELAYED; i++) {
    delayed *d = &pending[i];
    if (!d->res || d->due_ms > now)
      continue;
    char body[64];
    int n = snprintf(body, sizeof body, "waited %d ms\n", d->delay_ms);
    h3q_response *res = d->res;
    d->res = NULL;
    h3q_response_send(res, 200, "text/plain", body, (size_t)n);
  }
}

/* How long the host may sleep: the earlier of h3q's deadline and its own. */
static int wait_ms(void) {
  int64_t t = h3q_server_next_timeout_ms(server);
  int64_t now = now_ms();
  for (size_t i = 0; i < MAX_DELAYED; i++) {
    if (!pending[i].res)
      continue;
    int64_t left = pending[i].due_ms > now ? pending[i].due_ms - now : 0;
    if (t < 0 || left < t)
      t = left;
  }
  return t > INT_MAX ? INT_MAX : (int)t; /* -1: no deadline at all */
}

static int host_loop(void) {
  struct pollfd pfd = {.fd = h3q_server_fd(server), .events = POLLIN};
  for (;;) {
    if (poll(&pfd, 1, wait_ms()) < 0 && errno != EINTR) {
      perror("poll");
      return 1;
    }
    int rc = h3q_server_process(server);
    if (rc == H3Q_SERVER_STOPPED)
      return 0; /* drained */
    if (rc != H3Q_OK) {
      fprintf(stderr, "h3q_server_process: %s\n", h3q_strerror(rc));
      return 1;
    }
    /* The host's own work, in any order relative to process: what it
     * queues makes h3q_server_fd readable (and the next timeout 0). */
    finish_due_responses();
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CERT.pem KEY.pem [PORT]\n", argv[0]);
    return 2;
  }
  h3q_config cfg;
  h3q_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1";
  cfg.cert_path = argv[1];
  cfg.key_path = argv[2];
  cfg.port = argc > 3 ? (uint32_t)atoi(argv[3]) : 4433;
  cfg.loop_backend = H3Q_LOOP_EPOLL; /* the embeddable one */

  char err[256];
  if (h3q_server_new(&cfg, &server, err, sizeof err) != H3Q_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  h3q_server_route(server, "GET", "/hello/:name", hello, NULL);
  h3q_server_route(server, "GET", "/later/:ms", later, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int rc = h3q_server_start(server);
  if (rc != H3Q_OK) {
    fprintf(stderr, "h3q_server_start: %s\n", h3q_strerror(rc));
    h3q_server_free(server);
    return 1;
  }
  printf("embed listening on %s:%u\n", cfg.bind_addr, h3q_server_port(server));
  fflush(stdout);
  rc = host_loop();
  h3q_server_free(server);
  return rc;
}
