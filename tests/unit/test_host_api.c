/* The host API's edges without a client: argument checks, empty polls,
 * stop before start, the STOPPED event (through the getters and through
 * h3q_host_poll_into), notify and the event fd, corking and flushing, commands
 * after the loop ended, respond_file's checks, free in every state, and
 * inline mode (pump, arm, the watcher's notify, stop and free).
 * Requests are covered by tests/integration/test_host.py (host_tool) and the
 * Bun package. */
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "h3q.h"
#include "util/io_epoch.h"

static atomic_int notified;

static void on_notify(void) {
  atomic_fetch_add(&notified, 1);
}

static h3q_host *make_host(const char *cert, const char *key) {
  h3q_config *cfg = h3q_config_new();
  CHECK(cfg != NULL);
  CHECK(h3q_config_set(cfg, "bind_addr", "127.0.0.1") == H3Q_OK);
  CHECK(h3q_config_set(cfg, "port", "0") == H3Q_OK);
  CHECK(h3q_config_set(cfg, "cert_path", cert) == H3Q_OK);
  CHECK(h3q_config_set(cfg, "key_path", key) == H3Q_OK);
  CHECK(h3q_config_set(cfg, "drain_timeout_ms", "200") == H3Q_OK);
  h3q_host *host = NULL;
  char err[128];
  CHECK(h3q_host_new(cfg, 0, 0, &host, err, sizeof err) == H3Q_OK);
  h3q_config_free(cfg);
  return host;
}

static void test_bad_arguments(const char *cert) {
  h3q_config *cfg = h3q_config_new();
  CHECK(h3q_config_set(cfg, "cert_path", cert) == H3Q_OK);
  CHECK(h3q_config_set(cfg, "key_path", "/nonexistent/key.pem") == H3Q_OK);
  h3q_host *host = (h3q_host *)1;
  char err[128] = "";
  CHECK(h3q_host_new(cfg, 0, 0, &host, err, sizeof err) == H3Q_ETLS);
  CHECK(host == NULL);
  CHECK(err[0] != '\0');
  CHECK(h3q_host_new(cfg, 0, 0, NULL, err, sizeof err) == H3Q_EINVAL);
  h3q_config_free(cfg);
  CHECK(h3q_host_poll(NULL) == 0);
  CHECK(h3q_host_event_type(NULL, 0) == 0);
  CHECK(h3q_host_respond(NULL, 1, 200, NULL, 0, NULL, 0, 0) == H3Q_EINVAL);
  CHECK(h3q_host_stop(NULL, true) == H3Q_EINVAL);
  CHECK(h3q_host_cork(NULL, true) == H3Q_EINVAL);
  h3q_host_record rec;
  uint8_t bytes[8];
  CHECK(h3q_host_poll_into(NULL, &rec, 1, bytes, sizeof bytes) == 0);
  CHECK(h3q_host_record_size() == sizeof(h3q_host_record));
  h3q_host_free(NULL);
}

static void test_never_started(const char *cert, const char *key) {
  h3q_host *host = make_host(cert, key);
  CHECK(h3q_host_port(host) != 0);
  CHECK(h3q_host_stop(host, true) == H3Q_ESTATE);
  CHECK(h3q_host_poll(host) == 0);
  CHECK(h3q_host_wait(host, 0) == 0);
  /* Commands with id 0 or NULL data of a length are refused at once. */
  CHECK(h3q_host_write(host, 0, NULL, 0, 0) == H3Q_EINVAL);
  CHECK(h3q_host_write(host, 5, NULL, 3, 0) == H3Q_EINVAL);
  /* A command for an unknown stream is queued, then dropped by the loop
   * (here: freed with the host, which never ran). */
  CHECK(h3q_host_write(host, 5, (const uint8_t *)"abc", 3, 0) == H3Q_OK);
  h3q_host_free(host);
}

/* Descriptors open in this process (to see that none leak). */
static int open_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 1024; fd++)
    n += fcntl(fd, F_GETFD) != -1;
  return n;
}

/* respond_file opens the file at once: its errors come back from the call
 * and nothing is queued; a queued file is closed with the host. */
static void test_respond_file(const char *dir, const char *cert,
                              const char *key) {
  int baseline = open_fds();
  h3q_host *host = make_host(cert, key);
  const uint8_t *no_head = NULL;
  char path[96], missing[96];
  snprintf(path, sizeof path, "%s/body.txt", dir);
  snprintf(missing, sizeof missing, "%s/missing.txt", dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fputs("twelve bytes", f);
  fclose(f);
  int before = open_fds();
  CHECK(h3q_host_respond_file(NULL, 1, 200, no_head, 0, path, -1) ==
        H3Q_EINVAL);
  CHECK(h3q_host_respond_file(host, 0, 200, no_head, 0, path, -1) ==
        H3Q_EINVAL);
  CHECK(h3q_host_respond_file(host, 1, 200, no_head, 0, NULL, -1) ==
        H3Q_EINVAL);
  CHECK(h3q_host_respond_file(host, 1, 200, no_head, 0, missing, -1) ==
        H3Q_ENOTFOUND);
  /* Not a regular file, and not the size the caller holds (a slice). */
  CHECK(h3q_host_respond_file(host, 1, 200, no_head, 0, dir, -1) == H3Q_EINVAL);
  CHECK(h3q_host_respond_file(host, 1, 200, no_head, 0, path, 5) == H3Q_EINVAL);
  CHECK(open_fds() == before);
  CHECK(h3q_host_respond_file(host, 1, 200, no_head, 0, path, 12) == H3Q_OK);
  CHECK(open_fds() == before + 1);
  /* The same unchanged file again: its descriptor is shared. */
  CHECK(h3q_host_respond_file(host, 2, 200, no_head, 0, path, -1) == H3Q_OK);
  CHECK(open_fds() == before + 1);
  /* Rewritten (another size): opened anew; the queued commands keep the
   * old descriptor. A request answered in the same io epoch as the last
   * check may still get the old file (it was sent before the change could
   * be seen); one that arrived in a later read of datagrams gets the new
   * one. */
  f = fopen(path, "w");
  CHECK(f != NULL);
  fputs("fourteen bytes", f);
  fclose(f);
  CHECK(h3q_host_respond_file(host, 5, 200, no_head, 0, path, 12) == H3Q_OK);
  CHECK(open_fds() == before + 1);
  io_epoch_advance();
  CHECK(h3q_host_respond_file(host, 3, 200, no_head, 0, path, 12) ==
        H3Q_EINVAL);
  CHECK(h3q_host_respond_file(host, 3, 200, no_head, 0, path, 14) == H3Q_OK);
  CHECK(open_fds() == before + 2);
  /* Deleted: refused, and the cache lets go (command 3 still holds it). */
  unlink(path);
  io_epoch_advance();
  CHECK(h3q_host_respond_file(host, 4, 200, no_head, 0, path, -1) ==
        H3Q_ENOTFOUND);
  CHECK(open_fds() == before + 2);
  h3q_host_free(host); /* never ran: the queued commands' files are closed */
  CHECK(open_fds() == baseline);
}

static void test_start_stop(const char *cert, const char *key, bool graceful) {
  h3q_host *host = make_host(cert, key);
  atomic_store(&notified, 0);
  CHECK(h3q_host_poll(host) == 0); /* arms notify */
  CHECK(h3q_host_start(host, on_notify) == H3Q_OK);
  CHECK(h3q_host_start(host, on_notify) == H3Q_ESTATE);
  CHECK(h3q_host_stop(host, graceful) == H3Q_OK);
  CHECK(h3q_host_wait(host, 10000) == 1);
  struct pollfd p = {h3q_host_fd(host), POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 1); /* the fd is readable while events wait */
  CHECK(h3q_host_poll(host) == 1);
  CHECK(h3q_host_event_type(host, 0) == H3Q_HOST_STOPPED);
  CHECK(h3q_host_event_value(host, 0) == H3Q_OK);
  CHECK(h3q_host_event_data(host, 0) == NULL);
  CHECK(h3q_host_event_take(host, 0) == NULL);
  CHECK(h3q_host_event_type(host, 1) == 0); /* out of range */
  /* notify runs just after the event is queued, outside the lock. */
  for (int i = 0; i < 500 && atomic_load(&notified) == 0; i++)
    usleep(10000);
  CHECK(atomic_load(&notified) == 1);
  CHECK(h3q_host_poll(host) == 0);
  CHECK(poll(&p, 1, 0) == 0);
  /* The loop has ended: commands are refused. */
  CHECK(h3q_host_respond(host, 1, 200, NULL, 0, NULL, 0, H3Q_HOST_END) ==
        H3Q_ESTATE);
  h3q_host_free(host);
}

/* The STOPPED event as a record; a corked command is still refused once
 * the loop has ended, and uncorking with nothing queued is harmless. */
static void test_records(const char *cert, const char *key) {
  h3q_host *host = make_host(cert, key);
  h3q_host_record recs[4];
  uint8_t bytes[16];
  CHECK(h3q_host_poll_into(host, recs, 0, bytes, sizeof bytes) == 0);
  CHECK(h3q_host_poll_into(host, recs, 4, NULL, 4) == 0);
  CHECK(h3q_host_poll_into(host, recs, 4, bytes, sizeof bytes) == 0);
  atomic_store(&notified, 0);
  CHECK(h3q_host_start(host, on_notify) == H3Q_OK);
  CHECK(h3q_host_cork(host, true) == H3Q_OK);
  CHECK(h3q_host_stop(host, false) == H3Q_OK);
  CHECK(h3q_host_wait(host, 10000) == 1);
  CHECK(h3q_host_poll_into(host, recs, 4, bytes, sizeof bytes) == 1);
  CHECK(recs[0].type == H3Q_HOST_STOPPED);
  CHECK(recs[0].id == 0);
  CHECK(recs[0].value == H3Q_OK);
  CHECK(recs[0].owned == NULL);
  CHECK(recs[0].len == 0);
  CHECK(h3q_host_poll_into(host, recs, 4, bytes, sizeof bytes) == 0);
  for (int i = 0; i < 500 && atomic_load(&notified) == 0; i++)
    usleep(10000);
  CHECK(atomic_load(&notified) == 1);
  CHECK(h3q_host_write(host, 1, (const uint8_t *)"x", 1, 0) == H3Q_ESTATE);
  CHECK(h3q_host_cork(host, false) == H3Q_OK);
  h3q_host_free(host);
}

/* Whether the descriptors open number want within ms milliseconds. */
static bool fds_become(int want, int ms) {
  for (int i = 0; i < ms && open_fds() != want; i++)
    usleep(1000);
  return open_fds() == want;
}

/* flush wakes the loop thread for corked commands. Seen through a
 * respond_file command for a stream that does not exist: it holds its
 * file's descriptor (once the cache has let go of the file) until the loop
 * runs and drops it. The loop also runs commands when it wakes for its
 * own timers (the housekeeping sweep, every 250 ms when idle), so each
 * trial must see the descriptor closed within 100 ms of the flush: eight
 * in a row would pass without the flush about once in 1,500 runs. */
static void test_flush(const char *dir, const char *cert, const char *key) {
  h3q_host *host = make_host(cert, key);
  char path[96];
  snprintf(path, sizeof path, "%s/flushed.txt", dir);
  CHECK(h3q_host_flush(NULL) == H3Q_EINVAL);
  CHECK(h3q_host_flush(host) == H3Q_OK); /* nothing queued: nothing to do */
  CHECK(h3q_host_start(host, NULL) == H3Q_OK);
  CHECK(h3q_host_flush(host) == H3Q_OK);
  int before = open_fds();
  for (int trial = 0; trial < 8; trial++) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("flushed", f);
    fclose(f);
    CHECK(h3q_host_cork(host, true) == H3Q_OK);
    CHECK(h3q_host_respond_file(host, 9, 200, NULL, 0, path, -1) == H3Q_OK);
    /* Gone from the cache: only the queued command holds it now. */
    unlink(path);
    io_epoch_advance();
    CHECK(h3q_host_respond_file(host, 10, 200, NULL, 0, path, -1) ==
          H3Q_ENOTFOUND);
    CHECK(open_fds() == before + 1);
    CHECK(h3q_host_flush(host) == H3Q_OK);
    CHECK(fds_become(before, 100));
    CHECK(h3q_host_cork(host, false) == H3Q_OK);
  }
  h3q_host_free(host);
}

static void test_free_while_running(const char *cert, const char *key) {
  h3q_host *host = make_host(cert, key);
  CHECK(h3q_host_start(host, NULL) == H3Q_OK);
  h3q_host_free(host); /* stops, joins, frees the STOPPED event */
}

/* Inline mode: the calling thread pumps. The pump and arm calls belong to
 * inline hosts; the armed watcher calls notify for the server's timer
 * without any traffic; a stop ends in pumps with the STOPPED event; and a
 * running inline host can be freed (watcher joined, server driven to its
 * end). */
static void test_inline(const char *cert, const char *key, bool graceful) {
  h3q_host *threaded = make_host(cert, key);
  CHECK(h3q_host_pump(threaded) == H3Q_ESTATE); /* not started */
  CHECK(h3q_host_arm(threaded) == H3Q_ESTATE);
  CHECK(h3q_host_start(threaded, NULL) == H3Q_OK);
  CHECK(h3q_host_pump(threaded) == H3Q_ESTATE); /* not inline */
  CHECK(h3q_host_start_inline(threaded, on_notify) == H3Q_ESTATE);
  h3q_host_free(threaded);
  CHECK(h3q_host_pump(NULL) == H3Q_EINVAL);
  CHECK(h3q_host_arm(NULL) == H3Q_EINVAL);

  h3q_host *host = make_host(cert, key);
  CHECK(h3q_host_start_inline(host, NULL) == H3Q_EINVAL);
  atomic_store(&notified, 0);
  CHECK(h3q_host_start_inline(host, on_notify) == H3Q_OK);
  CHECK(h3q_host_start_inline(host, on_notify) == H3Q_ESTATE);
  CHECK(h3q_host_port(host) != 0);
  CHECK(h3q_host_pump(host) == 0); /* nothing arrived */
  /* Armed at start: the housekeeping timer (a few hundred ms at most)
   * makes the watcher call notify, once. */
  for (int i = 0; i < 300 && atomic_load(&notified) == 0; i++)
    usleep(10000);
  CHECK(atomic_load(&notified) == 1);
  usleep(50000);
  CHECK(atomic_load(&notified) == 1); /* disarmed until armed again */
  CHECK(h3q_host_arm(host) == H3Q_OK);
  CHECK(h3q_host_arm(host) == H3Q_OK); /* re-arming updates the deadline */
  /* Commands queue for the next pump; flush pumps at once. */
  CHECK(h3q_host_cork(host, true) == H3Q_OK);
  CHECK(h3q_host_flush(host) >= 0);
  CHECK(h3q_host_stop(host, graceful) == H3Q_OK);
  int waiting = 0;
  /* Bounded: drain_timeout_ms is 200 and nothing is open. */
  for (int i = 0; i < 300 && waiting == 0; i++) {
    waiting = h3q_host_pump(host);
    if (waiting == 0)
      usleep(10000);
  }
  CHECK(waiting == 1);
  CHECK(h3q_host_poll(host) == 1);
  CHECK(h3q_host_event_type(host, 0) == H3Q_HOST_STOPPED);
  CHECK(h3q_host_event_value(host, 0) == H3Q_OK);
  CHECK(h3q_host_pump(host) == H3Q_ESTATE); /* stopped */
  CHECK(h3q_host_respond(host, 1, 200, NULL, 0, NULL, 0, H3Q_HOST_END) ==
        H3Q_ESTATE);
  h3q_host_free(host);

  host = make_host(cert, key);
  CHECK(h3q_host_start_inline(host, on_notify) == H3Q_OK);
  CHECK(h3q_host_pump(host) == 0);
  h3q_host_free(host); /* running: the watcher ends, the server stops */
}

int main(void) {
  char dir[] = "/tmp/h3q-host-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char cert[64], key[64];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  CHECK(h3q_generate_self_signed_cert(cert, key, "localhost", 1) == H3Q_OK);
  test_bad_arguments(cert);
  test_never_started(cert, key);
  test_respond_file(dir, cert, key);
  test_start_stop(cert, key, true);
  test_start_stop(cert, key, false);
  test_records(cert, key);
  test_flush(dir, cert, key);
  test_free_while_running(cert, key);
  test_inline(cert, key, true);
  test_inline(cert, key, false);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return check_report("test_host_api");
}
