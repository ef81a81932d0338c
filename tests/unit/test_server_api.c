/* Server lifecycle across threads: run() on one thread; post() and stop()
 * from another; stop() before run(); route registration rules. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "h3q.h"

typedef struct run_ctx {
  h3q_server *srv;
  int rc;
  pthread_t thread;
} run_ctx;

static atomic_int posted_runs;
static pthread_t posted_on;

static void *run_thread(void *arg) {
  run_ctx *ctx = arg;
  ctx->rc = h3q_server_run(ctx->srv);
  return NULL;
}

static void on_post(void *user) {
  posted_on = pthread_self();
  atomic_fetch_add(&posted_runs, 1);
  (void)user;
}

static int noop(h3q_request *req, h3q_response *res, void *user) {
  return h3q_response_send(res, 204, NULL, NULL, 0);
}

static h3q_server *make_server(const char *cert, const char *key) {
  h3q_config cfg;
  h3q_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1";
  cfg.port = 40000 + (uint32_t)(getpid() % 20000);
  cfg.cert_path = cert;
  cfg.key_path = key;
  h3q_server *srv = NULL;
  char err[256];
  for (int i = 0; i < 20 && h3q_server_new(&cfg, &srv, err, sizeof err); i++)
    cfg.port++; /* port taken: try the next */
  return srv;
}

static void wait_for_posts(int n) {
  for (int i = 0; i < 500 && atomic_load(&posted_runs) < n; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static void test_post_and_stop_from_another_thread(h3q_server *srv) {
  run_ctx ctx = {.srv = srv, .rc = -99};
  CHECK(pthread_create(&ctx.thread, NULL, run_thread, &ctx) == 0);
  CHECK(h3q_server_post(srv, on_post, NULL) == H3Q_OK);
  CHECK(h3q_server_post(srv, on_post, NULL) == H3Q_OK);
  wait_for_posts(2);
  CHECK(atomic_load(&posted_runs) == 2);
  CHECK(pthread_equal(posted_on, ctx.thread)); /* ran on the loop thread */
  h3q_server_stop(srv);
  pthread_join(ctx.thread, NULL);
  CHECK(ctx.rc == H3Q_OK);
  CHECK(h3q_server_post(srv, on_post, NULL) == H3Q_ESTATE);
}

int main(void) {
  char dir[] = "/tmp/h3q-api-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char cert[64], key[64];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  CHECK(h3q_generate_self_signed_cert(cert, key, "localhost", 1) == H3Q_OK);

  h3q_server *srv = make_server(cert, key);
  CHECK(srv != NULL);
  if (srv) {
    CHECK(h3q_server_route(srv, "GET", "/a", noop, NULL) == H3Q_OK);
    CHECK(h3q_server_route(srv, "GET", "/a", noop, NULL) == H3Q_EEXIST);
    CHECK(h3q_server_route(srv, "get", "/a", noop, NULL) == H3Q_EINVAL);
    CHECK(h3q_server_route(srv, "GET", "a", noop, NULL) == H3Q_EINVAL);
    CHECK(h3q_server_route(srv, "GET", "/b", NULL, NULL) == H3Q_EINVAL);
    CHECK(h3q_server_serve_dir(srv, "/nonexistent-dir") == H3Q_EINVAL);
    CHECK(h3q_server_goaway(srv, 12345) == H3Q_ENOTFOUND);
    CHECK(h3q_server_port(srv) >= 40000);
    test_post_and_stop_from_another_thread(srv);
    h3q_server_free(srv);
  }
  /* stop() before run(): run() returns at once. */
  srv = make_server(cert, key);
  CHECK(srv != NULL);
  if (srv) {
    h3q_server_stop(srv);
    CHECK(h3q_server_run(srv) == H3Q_OK);
    h3q_server_free(srv);
  }
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return check_report("test_server_api");
}
