/* Error codes, their descriptions, and the one mapping to HTTP statuses. */
#include "h3q.h"

#include <pthread.h>
#include <quiche.h>
#include <stdio.h>

const char *h3q_strerror(int err) {
  switch (err) {
  case H3Q_OK:
    return "success";
  case H3Q_EINVAL:
    return "invalid argument";
  case H3Q_ENOMEM:
    return "out of memory";
  case H3Q_EAGAIN:
    return "would block: no room or no data yet";
  case H3Q_ESTATE:
    return "not allowed in the current state";
  case H3Q_ECLOSED:
    return "stream or connection closed";
  case H3Q_EIO:
    return "I/O error";
  case H3Q_ECONFIG:
    return "invalid configuration";
  case H3Q_ETLS:
    return "TLS certificate or key error";
  case H3Q_EQUIC:
    return "QUIC or HTTP/3 protocol error";
  case H3Q_EEXIST:
    return "already exists";
  case H3Q_ETOOLARGE:
    return "size limit exceeded";
  case H3Q_ENOTFOUND:
    return "not found";
  case H3Q_EFORBIDDEN:
    return "forbidden";
  case H3Q_EBADREQUEST:
    return "bad request";
  case H3Q_EINTERNAL:
    return "internal error";
  default:
    return "unknown error";
  }
}

int h3q_error_to_status(int err) {
  switch (err) {
  case H3Q_OK:
    return 200;
  case H3Q_ENOTFOUND:
    return 404;
  case H3Q_EFORBIDDEN:
    return 403;
  case H3Q_EINVAL:
  case H3Q_EBADREQUEST:
    return 400;
  case H3Q_ETOOLARGE:
    return 413;
  case H3Q_EAGAIN:
    return 503;
  default:
    return 500;
  }
}

static char version_text[64];

static void format_version(void) {
  snprintf(version_text, sizeof version_text, "%d.%d.%d (quiche %s)",
           H3Q_VERSION_MAJOR, H3Q_VERSION_MINOR, H3Q_VERSION_PATCH,
           quiche_version());
}

const char *h3q_version(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, format_version); /* callable from any thread */
  return version_text;
}
