/* A server with several workers, without a client: the workers field
 * (auto, range, the name in errors), one port for every worker, posts to
 * worker 0 and to a chosen worker from another thread (each on its
 * worker's thread, in posting order), goaway for another worker's
 * connection, stop and join, and the APIs that need one worker (embedding,
 * host). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/config.h"
#include "h3q.h"

#define POSTS 50
#define WAIT_ROUNDS 20000 /* of 1 ms: a lost post fails instead of hanging */

static char cert[64], key[64];

static h3q_server *make_server(uint32_t workers) {
  h3q_config cfg;
  h3q_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1";
  cfg.port = 0;
  cfg.cert_path = cert;
  cfg.key_path = key;
  cfg.workers = workers;
  cfg.drain_timeout_ms = 1000;
  h3q_server *srv = NULL;
  char err[256];
  if (h3q_server_new(&cfg, &srv, err, sizeof err) != H3Q_OK)
    fprintf(stderr, "  h3q_server_new: %s\n", err);
  return srv;
}

static void test_workers_field(void) {
  h3q_config c;
  h3q_config_init(&c);
  CHECK(c.workers == 1);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  CHECK(h3q_config_set(&c, "workers", "auto") == H3Q_OK);
  CHECK(c.workers >= 1 && c.workers <= H3Q_WORKERS_MAX &&
        (cpus > H3Q_WORKERS_MAX || c.workers == (uint32_t)cpus));
  CHECK(h3q_config_set(&c, "workers", "AUTO") == H3Q_OK);
  CHECK(h3q_config_set(&c, "workers", "x") == H3Q_ECONFIG);
  CHECK(h3q_config_set(&c, "workers", "-1") == H3Q_ECONFIG);
  CHECK(h3q_config_set(&c, "workers", "3") == H3Q_OK && c.workers == 3);
  c.cert_path = cert;
  c.key_path = key;
  char err[256] = "";
  CHECK(config_validate(&c, err, sizeof err) == H3Q_OK);
  const uint32_t bad[] = {0, H3Q_WORKERS_MAX + 1};
  for (size_t i = 0; i < 2; i++) {
    c.workers = bad[i];
    CHECK(config_validate(&c, err, sizeof err) == H3Q_ECONFIG);
    CHECK(strncmp(err, "workers:", 8) == 0);
  }
  h3q_config_release(&c);
}

static void test_one_worker_apis(void) {
  h3q_server *srv = make_server(2);
  CHECK(srv != NULL);
  if (srv) {
    CHECK(h3q_server_port(srv) != 0);
    CHECK(h3q_server_fd(srv) == H3Q_ECONFIG);
    CHECK(h3q_server_start(srv) == H3Q_ECONFIG);
    h3q_server_free(srv);
  }
  h3q_config *cfg = h3q_config_new();
  CHECK(h3q_config_set(cfg, "cert_path", cert) == H3Q_OK);
  CHECK(h3q_config_set(cfg, "key_path", key) == H3Q_OK);
  CHECK(h3q_config_set(cfg, "workers", "2") == H3Q_OK);
  h3q_host *host = (h3q_host *)1;
  char err[128] = "";
  CHECK(h3q_host_new(cfg, 0, 0, &host, err, sizeof err) == H3Q_ECONFIG);
  CHECK(host == NULL && strncmp(err, "workers:", 8) == 0);
  h3q_config_free(cfg);
}

/* What the posted functions saw. */
static pthread_t seen_thread[2];
static atomic_int seen_count[2];
static atomic_bool out_of_order;

typedef struct post_arg {
  int worker; /* where it was posted */
  int seq;
} post_arg;

static void on_post(void *user) {
  post_arg *a = user;
  int n = atomic_load(&seen_count[a->worker]);
  if (n == 0)
    seen_thread[a->worker] = pthread_self();
  else if (!pthread_equal(seen_thread[a->worker], pthread_self()))
    atomic_store(&out_of_order, true); /* another thread: wrong */
  if (a->seq != n)
    atomic_store(&out_of_order, true);
  atomic_store(&seen_count[a->worker], n + 1);
}

typedef struct run_ctx {
  h3q_server *srv;
  pthread_t thread;
  int rc;
} run_ctx;

static void *run_thread(void *arg) {
  run_ctx *c = arg;
  c->rc = h3q_server_run(c->srv);
  return NULL;
}

static bool wait_posts(void) {
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < WAIT_ROUNDS; i++) {
    if (atomic_load(&seen_count[0]) == POSTS &&
        atomic_load(&seen_count[1]) == POSTS)
      return true;
    nanosleep(&ms, NULL);
  }
  return false;
}

static void test_posts_reach_their_worker(void) {
  h3q_server *srv = make_server(2);
  CHECK(srv != NULL);
  if (!srv)
    return;
  static post_arg args[2][POSTS];
  run_ctx ctx = {.srv = srv, .rc = -99};
  CHECK(pthread_create(&ctx.thread, NULL, run_thread, &ctx) == 0);
  for (int i = 0; i < POSTS; i++) {
    args[0][i] = (post_arg){0, i};
    args[1][i] = (post_arg){1, i};
    CHECK(h3q_server_post(srv, on_post, &args[0][i]) == H3Q_OK);
    CHECK(h3q_server_post_worker(srv, 1, on_post, &args[1][i]) == H3Q_OK);
  }
  CHECK(h3q_server_post_worker(srv, 2, on_post, NULL) == H3Q_EINVAL);
  CHECK(h3q_server_post_worker(srv, 0, NULL, NULL) == H3Q_EINVAL);
  /* Connection 12345 would be worker 1's: from this thread, a post. */
  CHECK(h3q_server_goaway(srv, 12345) == H3Q_OK);
  CHECK(wait_posts());
  CHECK(!atomic_load(&out_of_order));
  /* Worker 0 is the thread that called h3q_server_run; worker 1 another. */
  CHECK(pthread_equal(seen_thread[0], ctx.thread));
  CHECK(!pthread_equal(seen_thread[1], ctx.thread));
  CHECK(!pthread_equal(seen_thread[1], pthread_self()));
  h3q_server_stop(srv);
  pthread_join(ctx.thread, NULL);
  CHECK(ctx.rc == H3Q_OK);
  /* Both loops have ended: nothing would run a post any more. */
  CHECK(h3q_server_post(srv, on_post, NULL) == H3Q_ESTATE);
  CHECK(h3q_server_post_worker(srv, 1, on_post, NULL) == H3Q_ESTATE);
  CHECK(h3q_server_goaway(srv, 12345) == H3Q_ESTATE);
  h3q_server_stats st;
  CHECK(h3q_server_get_stats(srv, &st, sizeof st) == sizeof st);
  CHECK(st.connections_accepted == 0 && st.connections_active == 0);
  h3q_server_free(srv);
}

static void test_stop_before_run(void) {
  h3q_server *srv = make_server(3);
  CHECK(srv != NULL);
  if (!srv)
    return;
  h3q_server_stop(srv);
  CHECK(h3q_server_run(srv) == H3Q_OK); /* at once, threads joined */
  h3q_server_free(srv);
}

int main(void) {
  alarm(120); /* a lost wakeup must fail, not hang */
  char dir[] = "/tmp/h3q-workers-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  CHECK(h3q_generate_self_signed_cert(cert, key, "localhost", 1) == H3Q_OK);
  test_workers_field();
  test_one_worker_apis();
  test_posts_reach_their_worker();
  test_stop_before_run();
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return check_report("test_server_workers");
}
