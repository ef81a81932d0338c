/* The WebTransport demo: /wt/echo echoes every datagram, returns each
 * client unidirectional stream on a server unidirectional stream after
 * its FIN, and each bidirectional stream on itself; GET /wt/cert-hash
 * gives the certificate's SHA-256 for a browser's serverCertificateHashes.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

/* A unidirectional stream is collected whole before it goes back. */
#define UNI_ECHO_MAX (16u << 20)
#define BIDI_CHUNK 65536
#define ECHO_TOO_LARGE 1 /* WebTransport code for STOP_SENDING */

/* One echo: bytes from `in`, back on `out` (in itself when bidi). Freed
 * when the last of its streams closes. */
typedef struct echo_job {
  h3q_wt_stream *in, *out;
  uint8_t *data;
  size_t len, off, cap;
  bool in_done; /* FIN read */
  int refs;
} echo_job;

static void job_release(h3q_wt_stream *st, bool aborted, void *user) {
  echo_job *job = user;
  if (st == job->in)
    job->in = NULL;
  if (st == job->out)
    job->out = NULL;
  if (--job->refs == 0) {
    free(job->data);
    free(job);
  }
}

static echo_job *job_new(h3q_wt_stream *in, size_t cap) {
  echo_job *job = calloc(1, sizeof *job);
  if (job)
    job->data = malloc(cap);
  if (!job || !job->data) {
    free(job);
    return NULL;
  }
  job->cap = cap;
  job->in = in;
  job->refs = 1;
  h3q_wt_stream_on_close(in, job_release, job);
  return job;
}

/* Writes what is buffered; true when all of it went. */
static bool flush(echo_job *job) {
  while (job->off < job->len) {
    ssize_t n = h3q_wt_stream_write(job->out, job->data + job->off,
                                    job->len - job->off);
    if (n <= 0)
      return false; /* H3Q_EAGAIN: on_writable follows; else it closes */
    job->off += (size_t)n;
  }
  return true;
}

/* Bidirectional: read a chunk, write it back, repeat; FIN after FIN. */
static void bidi_pump(h3q_wt_stream *st, void *user) {
  echo_job *job = user;
  for (int i = 0; i < 1024; i++) {
    if (!flush(job))
      return;
    if (job->in_done) {
      h3q_wt_stream_end(st);
      return;
    }
    ssize_t n = h3q_wt_stream_read(st, job->data, job->cap);
    if (n == H3Q_ECLOSED) {
      /* The client reset its side: ours goes the same way, same code. */
      int64_t code = h3q_wt_stream_reset_code(st);
      h3q_wt_stream_reset(st, code >= 0 ? (uint32_t)code : 0);
      return;
    }
    if (n < 0)
      return; /* H3Q_EAGAIN: on_readable follows */
    job->len = (size_t)n;
    job->off = 0;
    job->in_done = n == 0;
  }
}

static void uni_out_pump(h3q_wt_stream *st, void *user) {
  echo_job *job = user;
  if (flush(job))
    h3q_wt_stream_end(st);
}

/* The client's unidirectional stream ended: the same bytes go back. */
static void uni_send_back(echo_job *job) {
  h3q_wt_session *ses = h3q_wt_stream_session(job->in);
  if (!ses || h3q_wt_session_open_stream(ses, false, &job->out) != H3Q_OK)
    return; /* no stream credit or the session is ending: dropped */
  job->refs++;
  h3q_wt_stream_on_close(job->out, job_release, job);
  h3q_wt_stream_on_writable(job->out, uni_out_pump, job);
  uni_out_pump(job->out, job);
}

static void uni_in_read(h3q_wt_stream *st, void *user) {
  echo_job *job = user;
  for (int i = 0; i < 1024 && !job->in_done; i++) {
    if (job->len == job->cap) {
      size_t cap = job->cap * 2;
      uint8_t *p = cap <= UNI_ECHO_MAX ? realloc(job->data, cap) : NULL;
      if (!p) {
        h3q_wt_stream_stop(st, ECHO_TOO_LARGE);
        return;
      }
      job->data = p;
      job->cap = cap;
    }
    ssize_t n =
        h3q_wt_stream_read(st, job->data + job->len, job->cap - job->len);
    if (n < 0)
      return;
    job->len += (size_t)n;
    if (n == 0) {
      job->in_done = true;
      uni_send_back(job);
    }
  }
}

static void on_stream(h3q_wt_session *ses, h3q_wt_stream *st, void *user) {
  bool bidi = h3q_wt_stream_is_bidi(st);
  echo_job *job = job_new(st, BIDI_CHUNK);
  if (!job) {
    h3q_wt_stream_stop(st, ECHO_TOO_LARGE);
    return;
  }
  if (bidi) {
    job->out = st;
    h3q_wt_stream_on_readable(st, bidi_pump, job);
    h3q_wt_stream_on_writable(st, bidi_pump, job);
  } else {
    h3q_wt_stream_on_readable(st, uni_in_read, job);
  }
}

static void on_datagram(h3q_wt_session *ses, const uint8_t *data, size_t len,
                        void *user) {
  h3q_wt_session_send_datagram(ses, data, len); /* best effort */
}

static int wt_echo(h3q_request *req, h3q_wt_session *ses, void *user) {
  h3q_wt_session_on_datagram(ses, on_datagram, NULL);
  h3q_wt_session_on_stream(ses, on_stream, NULL);
  return 200;
}

/* ---- GET /wt/cert-hash ---- */

static char g_cert_hash[2 * crypto_hash_sha256_BYTES + 2];

/* SHA-256 of the first certificate's DER bytes, in hex. */
static int hash_cert(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char pem[65536];
  size_t n = fread(pem, 1, sizeof pem - 1, f);
  fclose(f);
  pem[n] = '\0';
  static const char begin[] = "-----BEGIN CERTIFICATE-----";
  char *b = strstr(pem, begin);
  char *e = b ? strstr(b, "-----END CERTIFICATE-----") : NULL;
  if (!e)
    return -1;
  b += sizeof begin - 1;
  uint8_t der[16384];
  size_t der_len;
  if (sodium_base642bin(der, sizeof der, b, (size_t)(e - b), "\r\n", &der_len,
                        NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
    return -1;
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, der, der_len);
  sodium_bin2hex(g_cert_hash, sizeof g_cert_hash, digest, sizeof digest);
  strcat(g_cert_hash, "\n");
  return 0;
}

static int cert_hash(h3q_request *req, h3q_response *res, void *user) {
  h3q_response_header(res, "cache-control", "no-store");
  return h3q_response_send(res, 200, "text/plain", g_cert_hash,
                           strlen(g_cert_hash));
}

int demo_add_webtransport(h3q_server *srv, const char *cert_path) {
  int rc = h3q_server_webtransport(srv, "/wt/echo", wt_echo, NULL);
  if (rc == H3Q_OK && hash_cert(cert_path) == 0)
    rc = h3q_server_route(srv, "GET", "/wt/cert-hash", cert_hash, NULL);
  if (rc != H3Q_OK)
    fprintf(stderr, "h3q-server: webtransport: %s\n", h3q_strerror(rc));
  return rc;
}
