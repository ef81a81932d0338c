/* A server with two or more workers whose handlers leave their responses
 * to another thread, the way an application with a thread pool does: the
 * handler notes its worker (h3q_request_worker) and queues a job; a helper
 * thread posts the job back to that worker (h3q_server_post_worker), or
 * first to worker 0 (h3q_server_post) and from there to the request's
 * worker. For tests/integration/test_workers.py (also under ASan).
 *   workers_tool PORT CERT KEY WORKERS
 * GET /deferred answers "worker=W same_thread=S" (S: the response was
 *   finished on the thread that ran the handler);
 * GET /posted answers "worker=W same_thread=S main=M" (M: h3q_server_post
 *   ran on the thread that called h3q_server_run);
 * GET /whoami answers "worker=W conn=C" at once;
 * GET /goaway/:conn calls h3q_server_goaway(conn) and answers "rc=R".
 * SIGTERM stops gracefully; after h3q_server_run returned it prints
 * "workers_tool stopped threads=T" (T: threads left in the process, the
 * helper's joined) and exits 0. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3q.h"

static h3q_server *srv;
static pthread_t main_thread;

/* One deferred response. Two owners: the close callback and the finishing
 * side (the posted function, or the helper when a post fails); the last
 * one frees it. */
typedef struct job {
  struct job *next;
  h3q_response *res;
  int worker;
  bool via_main; /* /posted: through worker 0 first */
  bool main_ok;  /* the post to worker 0 ran on the main thread */
  bool closed;   /* the close callback ran: res is gone */
  pthread_t handler_thread;
  atomic_int owners;
} job;

static void job_release(job *j) {
  if (atomic_fetch_sub(&j->owners, 1) == 1)
    free(j);
}

/* The helper thread's queue. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static job *q_head;
static bool q_done;

static void queue_push(job *j) {
  pthread_mutex_lock(&q_lock);
  j->next = q_head;
  q_head = j;
  pthread_cond_signal(&q_cond);
  pthread_mutex_unlock(&q_lock);
}

/* On the request's worker: answer, unless the stream is gone. */
static void finish(void *arg) {
  job *j = arg;
  if (!j->closed) {
    char body[96];
    int same = pthread_equal(pthread_self(), j->handler_thread) != 0;
    int n =
        j->via_main
            ? snprintf(body, sizeof body, "worker=%d same_thread=%d main=%d\n",
                       j->worker, same, j->main_ok)
            : snprintf(body, sizeof body, "worker=%d same_thread=%d\n",
                       j->worker, same);
    h3q_response_send(j->res, 200, "text/plain", body, (size_t)n);
  }
  job_release(j);
}

/* On worker 0 (h3q_server_post): note the thread, go on to the request's
 * worker. */
static void via_main(void *arg) {
  job *j = arg;
  j->main_ok = pthread_equal(pthread_self(), main_thread) != 0;
  if (h3q_server_post_worker(srv, (unsigned)j->worker, finish, j) != H3Q_OK)
    job_release(j);
}

static void *helper_main(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&q_lock);
    while (!q_head && !q_done)
      pthread_cond_wait(&q_cond, &q_lock);
    job *list = q_head;
    q_head = NULL;
    bool done = q_done;
    pthread_mutex_unlock(&q_lock);
    while (list) {
      job *j = list;
      list = j->next;
      int rc = j->via_main ? h3q_server_post(srv, via_main, j)
                           : h3q_server_post_worker(srv, (unsigned)j->worker,
                                                    finish, j);
      if (rc != H3Q_OK)
        job_release(j);
    }
    if (done)
      return NULL;
  }
}

static void on_close(h3q_response *res, bool aborted, void *user) {
  (void)res;
  (void)aborted;
  job *j = user;
  j->closed = true;
  job_release(j);
}

static int defer(h3q_request *req, h3q_response *res, bool through_main) {
  job *j = calloc(1, sizeof *j);
  if (!j)
    return H3Q_ENOMEM;
  j->res = res;
  j->worker = h3q_request_worker(req);
  j->via_main = through_main;
  j->handler_thread = pthread_self();
  atomic_init(&j->owners, 2);
  h3q_response_on_close(res, on_close, j);
  queue_push(j);
  return H3Q_OK;
}

static int deferred(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  return defer(req, res, false);
}

static int posted(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  return defer(req, res, true);
}

static int whoami(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  char body[64];
  int n = snprintf(body, sizeof body, "worker=%d conn=%llu\n",
                   h3q_request_worker(req),
                   (unsigned long long)h3q_request_connection_id(req));
  return h3q_response_send(res, 200, "text/plain", body, (size_t)n);
}

static int goaway(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  const char *id = h3q_request_param(req, "conn");
  char body[32];
  int n = snprintf(body, sizeof body, "rc=%d\n",
                   h3q_server_goaway(srv, strtoull(id, NULL, 10)));
  return h3q_response_send(res, 200, "text/plain", body, (size_t)n);
}

static void on_term(int sig) {
  (void)sig;
  h3q_server_stop(srv); /* async-signal-safe */
}

/* Entries of /proc/self/task: the threads of this process. */
static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static int add_routes(void) {
  int rc = h3q_server_route(srv, "GET", "/deferred", deferred, NULL);
  if (rc == H3Q_OK)
    rc = h3q_server_route(srv, "GET", "/posted", posted, NULL);
  if (rc == H3Q_OK)
    rc = h3q_server_route(srv, "GET", "/whoami", whoami, NULL);
  if (rc == H3Q_OK)
    rc = h3q_server_route(srv, "GET", "/goaway/:conn", goaway, NULL);
  return rc;
}

static int serve(void) {
  pthread_t helper;
  if (pthread_create(&helper, NULL, helper_main, NULL) != 0)
    return 1;
  printf("workers_tool listening on 127.0.0.1:%u\n", h3q_server_port(srv));
  fflush(stdout);
  int rc = h3q_server_run(srv);
  pthread_mutex_lock(&q_lock);
  q_done = true;
  pthread_cond_signal(&q_cond);
  pthread_mutex_unlock(&q_lock);
  pthread_join(helper, NULL);
  printf("workers_tool stopped threads=%d\n", count_threads());
  return rc == H3Q_OK ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: workers_tool PORT CERT KEY WORKERS\n");
    return 2;
  }
  h3q_config cfg;
  h3q_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1";
  char err[256];
  if (h3q_config_set(&cfg, "port", argv[1]) != H3Q_OK ||
      h3q_config_set(&cfg, "workers", argv[4]) != H3Q_OK) {
    fprintf(stderr, "workers_tool: bad port or workers\n");
    return 2;
  }
  cfg.cert_path = argv[2];
  cfg.key_path = argv[3];
  int rc = h3q_server_new(&cfg, &srv, err, sizeof err);
  h3q_config_release(&cfg);
  if (rc != H3Q_OK) {
    fprintf(stderr, "workers_tool: %s\n", err);
    return 2;
  }
  main_thread = pthread_self();
  signal(SIGTERM, on_term);
  rc = add_routes() == H3Q_OK ? serve() : 1;
  h3q_server_free(srv);
  return rc;
}
