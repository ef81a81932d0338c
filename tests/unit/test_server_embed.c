/* The embedding API without a client: state rules (libev servers refuse,
 * start once, no re-entry), posts and stops from another thread wake a
 * host that polls only h3q_server_fd, the stopped result, stop before
 * start, and h3q_server_run on the epoll backend. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "h3q.h"

#define MAX_ROUNDS 2000 /* host iterations before a test gives up */

static char cert[64], key[64];

static h3q_server *make_server(h3q_loop_backend backend) {
  h3q_config cfg;
  h3q_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1";
  cfg.port = 40000 + (uint32_t)(getpid() % 20000);
  cfg.cert_path = cert;
  cfg.key_path = key;
  cfg.loop_backend = backend;
  cfg.drain_timeout_ms = 1000;
  h3q_server *srv = NULL;
  char err[256];
  for (int i = 0; i < 20 && h3q_server_new(&cfg, &srv, err, sizeof err); i++)
    cfg.port++; /* port taken: try the next */
  return srv;
}

static int noop(h3q_request *req, h3q_response *res, void *user) {
  return h3q_response_send(res, 204, NULL, NULL, 0);
}

/* One host iteration: wait on the fd for at most next_timeout (capped so a
 * lost wakeup fails the test instead of hanging it). Returns what
 * h3q_server_process returned, or -100 when the wait timed out although
 * the server asked for no deadline. */
static int host_iteration(h3q_server *srv, int cap_ms) {
  int64_t t = h3q_server_next_timeout_ms(srv);
  struct pollfd p = {.fd = h3q_server_fd(srv), .events = POLLIN};
  int timeout = t < 0 || t > cap_ms ? cap_ms : (int)t;
  int n = poll(&p, 1, timeout);
  if (n == 0 && (t < 0 || t > cap_ms))
    return -100;
  return h3q_server_process(srv);
}

static void test_libev_is_not_embeddable(void) {
  h3q_server *srv = make_server(H3Q_LOOP_LIBEV);
  CHECK(srv != NULL);
  if (!srv)
    return;
  CHECK(h3q_server_fd(srv) == H3Q_ECONFIG);
  CHECK(h3q_server_start(srv) == H3Q_ECONFIG);
  CHECK(h3q_server_process(srv) == H3Q_ESTATE);
  CHECK(h3q_server_next_timeout_ms(srv) == -1);
  h3q_server_free(srv);
  CHECK(h3q_server_fd(NULL) == H3Q_EINVAL);
  CHECK(h3q_server_start(NULL) == H3Q_EINVAL);
  CHECK(h3q_server_process(NULL) == H3Q_EINVAL);
  CHECK(h3q_server_next_timeout_ms(NULL) == -1);
}

static atomic_int posted;
static pthread_t posted_on;
static h3q_server *reentry_srv;
static int reentry_rc;

static void on_post(void *user) {
  (void)user;
  posted_on = pthread_self();
  reentry_rc = h3q_server_process(reentry_srv);
  atomic_fetch_add(&posted, 1);
}

static void *post_then_stop(void *arg) {
  h3q_server *srv = arg;
  struct timespec ts = {0, 30 * 1000 * 1000};
  nanosleep(&ts, NULL);
  h3q_server_post(srv, on_post, NULL);
  nanosleep(&ts, NULL);
  h3q_server_stop(srv);
  return NULL;
}

static void test_embedded_lifecycle(void) {
  h3q_server *srv = make_server(H3Q_LOOP_EPOLL);
  CHECK(srv != NULL);
  if (!srv)
    return;
  int fd = h3q_server_fd(srv);
  CHECK(fd >= 0);
  CHECK(h3q_server_process(srv) == H3Q_ESTATE); /* not started */
  CHECK(h3q_server_next_timeout_ms(srv) == -1);
  CHECK(h3q_server_route(srv, "GET", "/a", noop, NULL) == H3Q_OK);
  CHECK(h3q_server_start(srv) == H3Q_OK);
  CHECK(h3q_server_start(srv) == H3Q_ESTATE);
  CHECK(h3q_server_run(srv) == H3Q_ESTATE);
  CHECK(h3q_server_route(srv, "GET", "/b", noop, NULL) == H3Q_ESTATE);
  CHECK(h3q_server_fd(srv) == fd);
  int64_t t = h3q_server_next_timeout_ms(srv);
  CHECK(t >= 0 && t <= 250); /* the housekeeping tick */
  CHECK(h3q_server_process(srv) == H3Q_OK);
  CHECK(h3q_server_process(srv) == H3Q_OK); /* spurious calls are fine */

  /* Another thread posts, then stops; the host only polls the fd. */
  atomic_store(&posted, 0);
  reentry_srv = srv;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, post_then_stop, srv) == 0);
  int rc = H3Q_OK, rounds = 0;
  while (rc == H3Q_OK && rounds++ < MAX_ROUNDS)
    rc = host_iteration(srv, 5000);
  pthread_join(th, NULL);
  CHECK(rc == H3Q_SERVER_STOPPED);
  CHECK(atomic_load(&posted) == 1);
  CHECK(pthread_equal(posted_on, pthread_self())); /* on the host thread */
  CHECK(reentry_rc == H3Q_ESTATE); /* no process inside a callback */
  CHECK(h3q_server_process(srv) == H3Q_SERVER_STOPPED);
  CHECK(h3q_server_next_timeout_ms(srv) == -1);
  CHECK(h3q_server_post(srv, on_post, NULL) == H3Q_ESTATE);
  CHECK(h3q_server_start(srv) == H3Q_ESTATE); /* started once */
  CHECK(h3q_server_run(srv) == H3Q_ESTATE);
  h3q_server_free(srv);
}

static void test_stop_before_start(void) {
  h3q_server *srv = make_server(H3Q_LOOP_EPOLL);
  CHECK(srv != NULL);
  if (!srv)
    return;
  h3q_server_stop(srv);
  CHECK(h3q_server_start(srv) == H3Q_OK);
  int rc = H3Q_OK, rounds = 0;
  while (rc == H3Q_OK && rounds++ < MAX_ROUNDS)
    rc = host_iteration(srv, 5000);
  CHECK(rc == H3Q_SERVER_STOPPED);
  CHECK(rounds <= 3);
  h3q_server_free(srv);
}

typedef struct run_ctx {
  h3q_server *srv;
  int rc;
} run_ctx;

static void *run_thread(void *arg) {
  run_ctx *ctx = arg;
  ctx->rc = h3q_server_run(ctx->srv);
  return NULL;
}

/* The epoll backend also runs the classic blocking loop. */
static void test_blocking_run_on_epoll(void) {
  h3q_server *srv = make_server(H3Q_LOOP_EPOLL);
  CHECK(srv != NULL);
  if (!srv)
    return;
  run_ctx ctx = {.srv = srv, .rc = -99};
  pthread_t th;
  atomic_store(&posted, 0);
  reentry_srv = srv;
  CHECK(pthread_create(&th, NULL, run_thread, &ctx) == 0);
  CHECK(h3q_server_post(srv, on_post, NULL) == H3Q_OK);
  for (int i = 0; i < 500 && atomic_load(&posted) == 0; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  CHECK(atomic_load(&posted) == 1);
  CHECK(pthread_equal(posted_on, th));
  CHECK(reentry_rc == H3Q_ESTATE); /* process is for embedded servers */
  h3q_server_stop(srv);
  pthread_join(th, NULL);
  CHECK(ctx.rc == H3Q_OK);
  h3q_server_free(srv);
}

int main(void) {
  alarm(120); /* a lost wakeup must fail, not hang */
  char dir[] = "/tmp/h3q-embed-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  CHECK(h3q_generate_self_signed_cert(cert, key, "localhost", 1) == H3Q_OK);
  test_libev_is_not_embeddable();
  test_embedded_lifecycle();
  test_stop_before_start();
  test_blocking_run_on_epoll();
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return check_report("test_server_embed");
}
