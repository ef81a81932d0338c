/* The smallest h3q program: one route, runs until Ctrl-C.
 *   hello CERT.pem KEY.pem [PORT] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "h3q.h"

static h3q_server *server;

static void on_signal(int sig) {
  (void)sig;
  h3q_server_stop(server);
}

static int hello(h3q_request *req, h3q_response *res, void *user) {
  (void)user;
  char body[256];
  int n = snprintf(body, sizeof body, "hello, %s\n",
                   h3q_request_param(req, "name"));
  return h3q_response_send(res, 200, "text/plain", body, (size_t)n);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CERT.pem KEY.pem [PORT]\n", argv[0]);
    return 2;
  }
  h3q_config cfg;
  h3q_config_init(&cfg);
  cfg.cert_path = argv[1];
  cfg.key_path = argv[2];
  cfg.port = argc > 3 ? (uint32_t)atoi(argv[3]) : 4433;

  char err[256];
  if (h3q_server_new(&cfg, &server, err, sizeof err) != H3Q_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  h3q_server_route(server, "GET", "/hello/:name", hello, NULL);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int rc = h3q_server_run(server); /* returns after h3q_server_stop */
  h3q_server_free(server);
  return rc == H3Q_OK ? 0 : 1;
}
