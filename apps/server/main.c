/* h3q-server: the h3q library as a command-line HTTP/3 server with demo
 * routes and an optional served folder. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "h3q.h"

#define EXIT_USAGE 2
#define DEFAULT_CERT_DIR ".h3q"
/* A generated certificate lives 14 days (browsers' limit for
 * serverCertificateHashes); renew it a day before that. */
#define CERT_DAYS 14
#define CERT_RENEW_AGE_S ((CERT_DAYS - 1) * 24 * 3600)

static h3q_server *g_server;

static void usage(FILE *out) {
  fprintf(out,
          "usage: h3q-server [options]\n"
          "  --addr ADDR          bind address (default 0.0.0.0; :: for "
          "IPv4+IPv6)\n"
          "  --port PORT          UDP port 1..65535 (default 4433)\n"
          "  --cert FILE          PEM certificate chain\n"
          "  --key FILE           PEM private key (without --cert/--key a "
          "self-signed\n"
          "                       ECDSA certificate is generated in "
          "./" DEFAULT_CERT_DIR "/)\n"
          "  --root DIR           serve files from DIR for paths no route "
          "claims\n"
          "  --log-level LEVEL    error|warn|info|debug|trace (default warn)\n"
          "  --idle-timeout MS    connection idle timeout (default 30000)\n"
          "  --max-streams N      concurrent request streams per connection "
          "(default 100)\n"
          "  --cc ALGO            cubic|reno|bbr2 (default cubic)\n"
          "  --max-payload N      max UDP payload size, 1200..65527 (default "
          "1350)\n"
          "  --qlog-dir DIR       write a qlog file per connection into DIR\n"
          "  --help               this text\n"
          "Demo routes: GET /hello, POST /echo, GET /bytes/:n, GET /user/:id,\n"
          "  GET /trailers, GET /produce/:n, POST /digest, GET /hints\n");
}

static void on_signal(int sig) {
  (void)sig;
  h3q_server_stop(g_server); /* async-signal-safe */
}

/* ---- set-up ---- */

static int ensure_cert(const char **cert, const char **key) {
  static const char *dir = DEFAULT_CERT_DIR;
  static char cert_path[256], key_path[256];
  snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
  snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
  *cert = cert_path;
  *key = key_path;
  struct stat st;
  if (stat(cert_path, &st) == 0 && access(key_path, R_OK) == 0 &&
      time(NULL) - st.st_mtime < CERT_RENEW_AGE_S)
    return 0;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "h3q-server: cert: cannot create %s: %s\n", dir,
            strerror(errno));
    return -1;
  }
  int rc = h3q_generate_self_signed_cert(cert_path, key_path, "localhost",
                                         CERT_DAYS);
  if (rc != H3Q_OK) {
    fprintf(stderr, "h3q-server: cert: cannot generate: %s\n",
            h3q_strerror(rc));
    return -1;
  }
  fprintf(stderr, "h3q-server: generated self-signed certificate %s\n",
          cert_path);
  return 0;
}

static int parse_number(const char *flag, const char *arg, uint64_t max,
                        uint64_t *out) {
  if (demo_parse_u64(arg, max, out) == 0)
    return 0;
  fprintf(stderr, "h3q-server: %s: '%s' is not a number in 0..%llu\n", flag,
          arg, (unsigned long long)max);
  return -1;
}

enum {
  OPT_ADDR = 256,
  OPT_PORT,
  OPT_CERT,
  OPT_KEY,
  OPT_ROOT,
  OPT_LOG,
  OPT_IDLE,
  OPT_STREAMS,
  OPT_CC,
  OPT_PAYLOAD,
  OPT_QLOG,
  OPT_HELP,
};

typedef struct options {
  h3q_config cfg;
  const char *root;
} options;

static int apply_option(options *o, int opt, const char *arg) {
  uint64_t v = 0;
  switch (opt) {
  case OPT_ADDR:
    o->cfg.bind_addr = arg;
    return 0;
  case OPT_CERT:
    o->cfg.cert_path = arg;
    return 0;
  case OPT_KEY:
    o->cfg.key_path = arg;
    return 0;
  case OPT_ROOT:
    o->root = arg;
    return 0;
  case OPT_CC:
    o->cfg.cc_algorithm = arg;
    return 0;
  case OPT_QLOG:
    o->cfg.qlog_dir = arg;
    return 0;
  case OPT_PORT:
    if (parse_number("--port", arg, UINT32_MAX, &v))
      return -1;
    o->cfg.port = (uint32_t)v;
    return 0;
  case OPT_IDLE:
    return parse_number("--idle-timeout", arg, UINT64_MAX,
                        &o->cfg.idle_timeout_ms);
  case OPT_STREAMS:
    return parse_number("--max-streams", arg, UINT64_MAX,
                        &o->cfg.initial_max_streams_bidi);
  case OPT_PAYLOAD:
    if (parse_number("--max-payload", arg, 1u << 20, &v))
      return -1;
    o->cfg.max_recv_udp_payload_size = o->cfg.max_send_udp_payload_size =
        (size_t)v;
    return 0;
  case OPT_LOG: {
    static const char *const names[] = {"error", "warn", "info", "debug",
                                        "trace"};
    for (int i = 0; i < 5; i++)
      if (strcmp(arg, names[i]) == 0) {
        o->cfg.log_level = (h3q_log_level)i;
        return 0;
      }
    fprintf(stderr,
            "h3q-server: --log-level: '%s' is not one of "
            "error|warn|info|debug|trace\n",
            arg);
    return -1;
  }
  default:
    return -1;
  }
}

/* The flag that sets a config field, for error messages. */
static const char *flag_for_field(const char *err) {
  static const char *const map[][2] = {
      {"bind_addr", "--addr"},
      {"port", "--port"},
      {"cert_path", "--cert"},
      {"key_path", "--key"},
      {"idle_timeout_ms", "--idle-timeout"},
      {"initial_max_streams_bidi", "--max-streams"},
      {"cc_algorithm", "--cc"},
      {"max_recv_udp_payload_size", "--max-payload"},
      {"max_send_udp_payload_size", "--max-payload"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    size_t n = strlen(map[i][0]);
    if (strncmp(err, map[i][0], n) == 0 && err[n] == ':')
      return map[i][1];
  }
  return NULL;
}

static int parse_args(int argc, char **argv, options *o) {
  static const struct option longopts[] = {
      {"addr", required_argument, NULL, OPT_ADDR},
      {"port", required_argument, NULL, OPT_PORT},
      {"cert", required_argument, NULL, OPT_CERT},
      {"key", required_argument, NULL, OPT_KEY},
      {"root", required_argument, NULL, OPT_ROOT},
      {"log-level", required_argument, NULL, OPT_LOG},
      {"idle-timeout", required_argument, NULL, OPT_IDLE},
      {"max-streams", required_argument, NULL, OPT_STREAMS},
      {"cc", required_argument, NULL, OPT_CC},
      {"max-payload", required_argument, NULL, OPT_PAYLOAD},
      {"qlog-dir", required_argument, NULL, OPT_QLOG},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  int opt;
  opterr = 0; /* we name the bad option ourselves */
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (opt == '?') {
      fprintf(stderr, "h3q-server: unknown option or missing value: %s\n",
              argv[optind - 1]);
      return -1;
    }
    if (opt == OPT_HELP) {
      usage(stdout);
      exit(0);
    }
    if (apply_option(o, opt, optarg) != 0)
      return -1;
  }
  if (optind < argc) {
    fprintf(stderr, "h3q-server: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  if ((o->cfg.cert_path == NULL) != (o->cfg.key_path == NULL)) {
    fprintf(stderr, "h3q-server: %s: --cert and --key go together\n",
            o->cfg.cert_path ? "key" : "cert");
    return -1;
  }
  return 0;
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv) {
  options o = {0};
  h3q_config_init(&o.cfg);
  if (parse_args(argc, argv, &o) != 0) {
    fprintf(stderr, "h3q-server: see --help\n");
    return EXIT_USAGE;
  }
  if (!o.cfg.cert_path && ensure_cert(&o.cfg.cert_path, &o.cfg.key_path))
    return EXIT_USAGE;

  char err[256];
  int rc = h3q_server_new(&o.cfg, &g_server, err, sizeof err);
  if (rc != H3Q_OK) {
    const char *flag = flag_for_field(err);
    fprintf(stderr, "h3q-server: %s%s%s\n", flag ? flag : "", flag ? ": " : "",
            err);
    return EXIT_USAGE;
  }
  if (demo_add_routes(g_server, o.root) != H3Q_OK) {
    h3q_server_free(g_server);
    return EXIT_USAGE;
  }
  install_signals();
  printf("h3q-server listening on %s:%u\n", o.cfg.bind_addr,
         h3q_server_port(g_server));
  fflush(stdout);
  rc = h3q_server_run(g_server);
  h3q_server_free(g_server);
  return rc == H3Q_OK ? 0 : 1;
}
