/* The priority field parser (src/http/priority.h). Input: the field value.
 * Invariants: urgency stays within 0..7; a parameter either takes a value
 * from the input or keeps the caller's; members apply left to right, so
 * parsing the value in two pieces cut at a comma gives the same result; a
 * result written back as "u=N, i=?B" parses to itself; a member appended
 * at the end wins. */
#include "fuzz.h"
#include "http/priority.h"

static priority parse_from(priority start, const char *value, size_t len) {
  priority p = start;
  priority_parse(value, len, &p);
  FUZZ_CHECK(p.urgency <= 7);
  return p;
}

static bool same(priority a, priority b) {
  return a.urgency == b.urgency && a.incremental == b.incremental;
}

/* Whatever the input did not set keeps the starting value, whatever it set
 * does not depend on the starting value. */
static void check_start_independent(const char *value, size_t len) {
  priority lo = parse_from((priority){0, false}, value, len);
  priority hi = parse_from((priority){7, true}, value, len);
  if (lo.urgency != hi.urgency) {
    FUZZ_CHECK(lo.urgency == 0 && hi.urgency == 7);
  }
  if (lo.incremental != hi.incremental) {
    FUZZ_CHECK(!lo.incremental && hi.incremental);
  }
}

/* Cutting at each of the first commas: parse(head) then parse(tail). */
static void check_split(const char *value, size_t len, priority whole) {
  size_t cuts = 0;
  for (size_t c = 0; c < len && cuts < 16; c++) {
    if (value[c] != ',') {
      continue;
    }
    cuts++;
    priority p = {PRIORITY_DEFAULT_URGENCY, false};
    priority_parse(value, c, &p);
    priority_parse(value + c + 1, len - c - 1, &p);
    FUZZ_CHECK(same(p, whole));
  }
}

static void check_roundtrip(priority p) {
  char text[32];
  int n = snprintf(text, sizeof text, "u=%u, i=?%d", (unsigned)p.urgency,
                   p.incremental ? 1 : 0);
  priority back = parse_from((priority){p.urgency == 0 ? 7 : 0, !p.incremental},
                             text, (size_t)n);
  FUZZ_CHECK(same(back, p));
}

static void check_last_wins(const char *value, size_t len) {
  static const char tail[] = ", u=5, i=?0";
  char *longer = malloc(len + sizeof tail);
  if (longer == NULL) {
    abort();
  }
  if (len > 0) {
    memcpy(longer, value, len);
  }
  memcpy(longer + len, tail, sizeof tail - 1);
  priority p = parse_from((priority){1, true}, longer, len + sizeof tail - 1);
  FUZZ_CHECK(p.urgency == 5 && !p.incremental);
  free(longer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* data is exactly size bytes long: ASan sees any read past len. */
  const char *value = (const char *)data;
  priority whole =
      parse_from((priority){PRIORITY_DEFAULT_URGENCY, false}, value, size);
  check_start_independent(value, size);
  check_split(value, size, whole);
  check_roundtrip(whole);
  check_last_wins(value, size);
  return 0;
}
