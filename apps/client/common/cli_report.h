/* h3q-client's per-request results: -i header lines on stderr, --json
 * objects on stdout, error lines, and the ok/failed tally. */
#ifndef CLI_REPORT_H
#define CLI_REPORT_H

#include "h3c_req.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cli_field {
  uint8_t *name;
  size_t name_len;
  uint8_t *value;
  size_t value_len;
} cli_field;

typedef struct cli_fields {
  cli_field *v;
  size_t n;
  size_t cap;
} cli_fields;

/* One request as the client program sees it. */
typedef struct cli_rec {
  h3c_req req;        /* req.user points back here */
  unsigned conn;      /* connection index for the report */
  cli_fields headers; /* --json only; pseudo-headers left out */
  cli_fields trailers;
} cli_rec;

typedef struct cli_report {
  bool json;        /* --json objects on stdout */
  bool include;     /* -i lines on stderr */
  bool fail_status; /* --fail */
  uint64_t ok;
  uint64_t failed;
} cli_report;

cli_rec *cli_rec_new(const h3c_tmpl *t, unsigned conn);
void cli_rec_free(cli_rec *rec);

/* Header hook body: prints (-i) and collects (--json). */
void cli_report_header(cli_report *rp, cli_rec *rec, h3c_hdr_kind kind,
                       const uint8_t *name, size_t name_len,
                       const uint8_t *value, size_t value_len);

/* Reports one finished request and counts it (applies --fail). */
void cli_report_done(cli_report *rp, cli_rec *rec);

/* The final --json summary line. */
void cli_report_summary(const cli_report *rp, double seconds);

#endif
