/* HTTP-dates, entity-tags and preconditions (RFC 9110 sections 5.6.7,
 * 8.8.3 and 13). */
#include "http/conditional.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const short_days[7] = {"Sun", "Mon", "Tue", "Wed",
                                          "Thu", "Fri", "Sat"};
static const char *const long_days[7] = {"Sunday",    "Monday",   "Tuesday",
                                         "Wednesday", "Thursday", "Friday",
                                         "Saturday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};

void http_date_format(time_t t, char out[HTTP_DATE_SIZE]) {
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL || tm.tm_year > 9999 - 1900 ||
      tm.tm_year < -1900) {
    t = 0;
    gmtime_r(&t, &tm);
  }
  /* Exactly HTTP_DATE_SIZE - 1 characters for years 0..9999; the larger
   * buffer only keeps the compiler's truncation analysis quiet. */
  char buf[64];
  snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
           short_days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  memcpy(out, buf, HTTP_DATE_SIZE - 1);
  out[HTTP_DATE_SIZE - 1] = '\0';
}

/* ------------------------------------------------------------ dates */

typedef struct civil {
  int64_t year;
  int month; /* 1..12 */
  int day;   /* 1..31 */
  int hour, minute, second;
} civil;

/* Matches one of n words (case-sensitive, as the grammar says) at *p. */
static int match_word(const char **p, const char *const *words, int n) {
  for (int i = 0; i < n; i++) {
    size_t len = strlen(words[i]);
    if (strncmp(*p, words[i], len) == 0) {
      *p += len;
      return i;
    }
  }
  return -1;
}

/* Exactly n digits; a leading space stands for a zero when pad is set
 * (asctime's day). */
static bool digits(const char **p, int n, bool pad, int64_t *out) {
  int64_t v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (pad && i == 0 && c == ' ') {
      continue;
    }
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return true;
}

static bool literal(const char **p, const char *lit) {
  size_t len = strlen(lit);
  if (strncmp(*p, lit, len) != 0) {
    return false;
  }
  *p += len;
  return true;
}

static bool small(const char **p, int n, bool pad, int *out) {
  int64_t v;
  if (!digits(p, n, pad, &v)) {
    return false;
  }
  *out = (int)v;
  return true;
}

/* "HH:MM:SS" */
static bool time_of_day(const char **p, civil *c) {
  return small(p, 2, false, &c->hour) && literal(p, ":") &&
         small(p, 2, false, &c->minute) && literal(p, ":") &&
         small(p, 2, false, &c->second);
}

static bool month_name(const char **p, civil *c) {
  int m = match_word(p, months, 12);
  c->month = m + 1;
  return m >= 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool imf_fixdate(const char *p, civil *c) {
  return match_word(&p, short_days, 7) >= 0 && literal(&p, ", ") &&
         small(&p, 2, false, &c->day) && literal(&p, " ") &&
         month_name(&p, c) && literal(&p, " ") &&
         digits(&p, 4, false, &c->year) && literal(&p, " ") &&
         time_of_day(&p, c) && literal(&p, " GMT") && *p == '\0';
}

/* "Sunday, 06-Nov-94 08:49:37 GMT"; the century is settled later. */
static bool rfc850_date(const char *p, civil *c) {
  return match_word(&p, long_days, 7) >= 0 && literal(&p, ", ") &&
         small(&p, 2, false, &c->day) && literal(&p, "-") &&
         month_name(&p, c) && literal(&p, "-") &&
         digits(&p, 2, false, &c->year) && literal(&p, " ") &&
         time_of_day(&p, c) && literal(&p, " GMT") && *p == '\0';
}

/* "Sun Nov  6 08:49:37 1994" */
static bool asctime_date(const char *p, civil *c) {
  return match_word(&p, short_days, 7) >= 0 && literal(&p, " ") &&
         month_name(&p, c) && literal(&p, " ") && small(&p, 2, true, &c->day) &&
         literal(&p, " ") && time_of_day(&p, c) && literal(&p, " ") &&
         digits(&p, 4, false, &c->year) && *p == '\0';
}

static bool leap_year(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool civil_valid(const civil *c) {
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (c->month < 1 || c->month > 12 || c->day < 1 ||
      c->day > mdays[c->month - 1]) {
    return false;
  }
  if (c->month == 2 && c->day == 29 && !leap_year(c->year)) {
    return false;
  }
  return c->hour <= 23 && c->minute <= 59 && c->second <= 60;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* RFC 9110 section 5.6.7: a two-digit year that would be more than 50
 * years in the future is in the past century. */
static int64_t full_year(int64_t yy) {
  time_t now = time(NULL);
  struct tm tm;
  int64_t current = gmtime_r(&now, &tm) ? tm.tm_year + 1900 : 1970;
  int64_t y = current - current % 100 + yy;
  return y > current + 50 ? y - 100 : y;
}

bool http_date_parse(const char *value, time_t *out) {
  civil c = {0};
  if (value == NULL) {
    return false;
  }
  if (!imf_fixdate(value, &c) && !asctime_date(value, &c)) {
    c = (civil){0};
    if (!rfc850_date(value, &c)) {
      return false;
    }
    c.year = full_year(c.year);
  }
  if (!civil_valid(&c)) {
    return false;
  }
  int64_t days = days_from_civil(c.year, c.month, c.day);
  *out = (time_t)(days * 86400 + c.hour * 3600 + c.minute * 60 + c.second);
  return true;
}

/* ------------------------------------------------------------ etags */

/* One entity-tag at p: [W/] DQUOTE *etagc DQUOTE. Sets *tag to the opaque
 * tag (quotes included) and *len; returns the end, or NULL. */
static const char *parse_etag(const char *p, bool *weak, const char **tag,
                              size_t *len) {
  *weak = p[0] == 'W' && p[1] == '/';
  if (*weak) {
    p += 2;
  }
  if (*p != '"') {
    return NULL;
  }
  const char *q = p + 1;
  for (; *q != '"'; q++) {
    unsigned char c = (unsigned char)*q;
    if (c < 0x21 || c == 0x7f) {
      return NULL; /* also the end of the string */
    }
  }
  *tag = p;
  *len = (size_t)(q + 1 - p);
  return q + 1;
}

static const char *skip_ows(const char *p) {
  while (*p == ' ' || *p == '\t') {
    p++;
  }
  return p;
}

/* True when the tag (weak or not) compares equal to etag. */
static bool tag_equal(const char *tag, size_t len, bool tag_weak,
                      const char *etag, bool weak) {
  bool etag_weak = etag[0] == 'W' && etag[1] == '/';
  if (!weak && (tag_weak || etag_weak)) {
    return false;
  }
  const char *opaque = etag_weak ? etag + 2 : etag;
  return strlen(opaque) == len && memcmp(opaque, tag, len) == 0;
}

bool etag_list_match(const char *list, const char *etag, bool weak) {
  if (list == NULL || etag == NULL) {
    return false;
  }
  const char *p = skip_ows(list);
  if (p[0] == '*' && *skip_ows(p + 1) == '\0') {
    return true;
  }
  bool matched = false;
  for (; *p != '\0'; p = skip_ows(p)) {
    if (*p == ',') {
      p++;
      continue;
    }
    bool tag_weak;
    const char *tag;
    size_t len;
    p = parse_etag(p, &tag_weak, &tag, &len);
    if (p == NULL) {
      return false;
    }
    matched |= tag_equal(tag, len, tag_weak, etag, weak);
    p = skip_ows(p);
    if (*p != ',' && *p != '\0') {
      return false;
    }
  }
  return matched;
}

/* ------------------------------------------------------------ preconditions */

conditional_result conditional_evaluate(const conditional_fields *f,
                                        const char *etag,
                                        time_t last_modified) {
  time_t date;
  if (f->if_match != NULL) {
    if (!etag_list_match(f->if_match, etag, false)) {
      return COND_PRECONDITION_FAILED;
    }
  } else if (http_date_parse(f->if_unmodified_since, &date) &&
             last_modified > date) {
    return COND_PRECONDITION_FAILED;
  }
  if (f->if_none_match != NULL) {
    if (etag_list_match(f->if_none_match, etag, true)) {
      return COND_NOT_MODIFIED;
    }
  } else if (http_date_parse(f->if_modified_since, &date) &&
             last_modified <= date) {
    return COND_NOT_MODIFIED;
  }
  return COND_PROCEED;
}

bool conditional_if_range(const char *if_range, const char *etag,
                          time_t last_modified) {
  if (if_range == NULL) {
    return true;
  }
  if (if_range[0] == '"' || (if_range[0] == 'W' && if_range[1] == '/')) {
    bool weak;
    const char *tag;
    size_t len;
    const char *end = parse_etag(if_range, &weak, &tag, &len);
    return end != NULL && *end == '\0' && etag != NULL &&
           tag_equal(tag, len, weak, etag, false);
  }
  time_t date;
  return http_date_parse(if_range, &date) && date == last_modified;
}
