/* Unit tests for the static file handler's pure helpers: Range parsing,
 * HTTP-dates, entity-tag comparison, preconditions, listing pages. */
#include "check.h"
#include "handlers/dir_listing.h"
#include "http/conditional.h"
#include "http/http_range.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ Range */

static http_range_kind parse(const char *v, uint64_t size, uint64_t *first,
                             uint64_t *last) {
  http_byte_range r = {UINT64_MAX, UINT64_MAX};
  http_range_kind k = http_range_parse(v, size, &r);
  *first = r.first;
  *last = r.last;
  return k;
}

#define RANGE_IS(v, size, f, l)                                                \
  do {                                                                         \
    uint64_t f_, l_;                                                           \
    CHECK(parse(v, size, &f_, &l_) == HTTP_RANGE_SINGLE);                      \
    CHECK(f_ == (uint64_t)(f) && l_ == (uint64_t)(l));                         \
  } while (0)

#define KIND_IS(v, size, kind)                                                 \
  do {                                                                         \
    uint64_t f_, l_;                                                           \
    CHECK(parse(v, size, &f_, &l_) == (kind));                                 \
  } while (0)

static void test_range_single(void) {
  RANGE_IS("bytes=0-9", 100, 0, 9);
  RANGE_IS("bytes=10-", 100, 10, 99);
  RANGE_IS("bytes=-10", 100, 90, 99);
  RANGE_IS("bytes=0-0", 1, 0, 0);
  RANGE_IS("bytes=99-99", 100, 99, 99);
  RANGE_IS("bytes=50-1000", 100, 50, 99); /* last clipped */
  RANGE_IS("bytes=-1000", 100, 0, 99);    /* suffix longer than the file */
  RANGE_IS("bytes=0-", 100, 0, 99);       /* the whole file, still 206 */
  RANGE_IS("BYTES=1-2", 100, 1, 2);       /* the unit is case-insensitive */
  RANGE_IS("Bytes=1-2", 100, 1, 2);
  RANGE_IS("bytes=007-008", 100, 7, 8); /* leading zeros */
  RANGE_IS("bytes= 1-2 ", 100, 1, 2);   /* OWS around the list */
  RANGE_IS("bytes=1-2,", 100, 1, 2);    /* empty list elements */
  RANGE_IS("bytes=,1-2", 100, 1, 2);
  RANGE_IS("bytes=,, 1-2 ,,", 100, 1, 2);
  RANGE_IS("bytes=0-99999999999999999999999", 100, 0, 99); /* saturated */
  RANGE_IS("bytes=-99999999999999999999999", 100, 0, 99);
  RANGE_IS("bytes=5-5,200-300", 100, 5, 5); /* unsatisfiable one dropped */
  RANGE_IS("bytes=-0,3-4", 100, 3, 4);
}

static void test_range_unsatisfiable(void) {
  KIND_IS("bytes=100-", 100, HTTP_RANGE_UNSATISFIABLE);
  KIND_IS("bytes=100-200", 100, HTTP_RANGE_UNSATISFIABLE);
  KIND_IS("bytes=-0", 100, HTTP_RANGE_UNSATISFIABLE);
  KIND_IS("bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE);
  KIND_IS("bytes=0-0", 0, HTTP_RANGE_UNSATISFIABLE);
  KIND_IS("bytes=200-300,400-", 100, HTTP_RANGE_UNSATISFIABLE);
  KIND_IS("bytes=99999999999999999999999-", 100, HTTP_RANGE_UNSATISFIABLE);
}

static void test_range_ignored(void) {
  KIND_IS(NULL, 100, HTTP_RANGE_NONE);
  KIND_IS("", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=,", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes 0-1", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes =0-1", 100, HTTP_RANGE_NONE);
  KIND_IS("items=0-1", 100, HTTP_RANGE_NONE);
  KIND_IS("byte=0-1", 100, HTTP_RANGE_NONE);
  KIND_IS("bytesx=0-1", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=5-4", 100, HTTP_RANGE_NONE); /* last < first: invalid */
  KIND_IS("bytes=0-1,5-4", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=-", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=--1", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=a-b", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=1", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=+1-2", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=1 -2", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=1- 2", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=1-2;x", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=1-2 3-4", 100, HTTP_RANGE_NONE);
  KIND_IS("bytes=0x1-2", 100, HTTP_RANGE_NONE);
  /* An empty file: a 206 cannot describe it, so suffix ranges are ignored. */
  KIND_IS("bytes=-5", 0, HTTP_RANGE_NONE);
}

static void test_range_multiple(void) {
  KIND_IS("bytes=0-1,5-6", 100, HTTP_RANGE_MULTIPLE);
  KIND_IS("bytes=0-1, 5-6", 100, HTTP_RANGE_MULTIPLE);
  KIND_IS("bytes=0-1,0-1", 100, HTTP_RANGE_MULTIPLE);
  KIND_IS("bytes=-1,0-", 100, HTTP_RANGE_MULTIPLE);
  KIND_IS("bytes=0-1,2-3,200-", 100, HTTP_RANGE_MULTIPLE);
  /* out is untouched when not SINGLE */
  http_byte_range r = {7, 8};
  CHECK(http_range_parse("bytes=0-1,5-6", 100, &r) == HTTP_RANGE_MULTIPLE);
  CHECK(r.first == 7 && r.last == 8);
}

/* ------------------------------------------------------------ dates */

static void date_is(const char *s, time_t want) {
  time_t t = 12345;
  CHECK(http_date_parse(s, &t));
  CHECK(t == want);
  if (t != want) {
    fprintf(stderr, "  %s -> %lld, want %lld\n", s, (long long)t,
            (long long)want);
  }
}

static void date_bad(const char *s) {
  time_t t = 12345;
  CHECK(!http_date_parse(s, &t));
  CHECK(t == 12345);
}

static void test_dates(void) {
  /* RFC 9110's example in all three formats: 784111777. */
  date_is("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
  date_is("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
  date_is("Sun Nov  6 08:49:37 1994", 784111777);
  date_is("Thu, 01 Jan 1970 00:00:00 GMT", 0);
  date_is("Tue, 29 Feb 2000 12:00:00 GMT", 951825600);
  date_is("Sat, 01 Jan 2000 00:00:00 GMT", 946684800);
  date_is("Sat, 01 Jan 2000 00:00:60 GMT", 946684860); /* leap second */
  date_is("Mon, 01 Jan 2001 00:00:00 GMT", 978307200);
  date_is("Friday, 01-Jan-10 00:00:00 GMT", 1262304000); /* 2010 */
  date_is("Wed, 31 Dec 1969 23:59:59 GMT", -1);
  date_is("Fri, 31 Dec 9999 23:59:59 GMT", (time_t)253402300799);
  date_is("Thu Jan 11 12:00:00 2024", 1704974400);

  date_bad(NULL);
  date_bad("");
  date_bad("Sun, 06 Nov 1994 08:49:37 UTC");
  date_bad("Sun, 06 Nov 1994 08:49:37 gmt");
  date_bad("sun, 06 Nov 1994 08:49:37 GMT");
  date_bad("Sun, 6 Nov 1994 08:49:37 GMT");
  date_bad("Sun, 06 nov 1994 08:49:37 GMT");
  date_bad("Sun, 06 Nov 94 08:49:37 GMT");
  date_bad("Sun, 06 Nov 1994 8:49:37 GMT");
  date_bad(" Sun, 06 Nov 1994 08:49:37 GMT");
  date_bad("Sun, 06 Nov 1994 08:49:37 GMT ");
  date_bad("Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT");
  date_bad("Sun, 32 Nov 1994 08:49:37 GMT");
  date_bad("Sun, 31 Nov 1994 08:49:37 GMT");
  date_bad("Sun, 00 Nov 1994 08:49:37 GMT");
  date_bad("Sun, 29 Feb 1900 08:49:37 GMT"); /* 1900 is not leap */
  date_bad("Sun, 06 Nov 1994 24:00:00 GMT");
  date_bad("Sun, 06 Nov 1994 23:60:00 GMT");
  date_bad("Sun, 06 Nov 1994 23:59:61 GMT");
  date_bad("Sun, 06 Nov 1994 08:49 GMT");
  date_bad("Sun, 06 Nov 1994");
  date_bad("Sunday, 06-Nov-1994 08:49:37 GMT");
  date_bad("Sun Nov 6 08:49:37 1994");
  date_bad("Sun Nov  6 08:49:37 94");
  date_bad("Xyz, 06 Nov 1994 08:49:37 GMT");
  date_bad("1994-11-06T08:49:37Z");
  date_bad("784111777");
}

static void test_date_format(void) {
  char buf[HTTP_DATE_SIZE];
  http_date_format(784111777, buf);
  CHECK_STR(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
  http_date_format(0, buf);
  CHECK_STR(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
  http_date_format(951825600, buf);
  CHECK_STR(buf, "Tue, 29 Feb 2000 12:00:00 GMT");
  /* round trip */
  for (time_t t = -86400; t < (time_t)4102444800; t += 7777777) {
    time_t back = 0;
    http_date_format(t, buf);
    CHECK(strlen(buf) == HTTP_DATE_SIZE - 1);
    CHECK(http_date_parse(buf, &back) && back == t);
  }
}

/* ------------------------------------------------------------ etags */

static void test_etags(void) {
  const char *e = "\"abc-1\"";
  CHECK(etag_list_match("\"abc-1\"", e, true));
  CHECK(etag_list_match("\"abc-1\"", e, false));
  CHECK(etag_list_match("W/\"abc-1\"", e, true));   /* weak comparison */
  CHECK(!etag_list_match("W/\"abc-1\"", e, false)); /* strong: no */
  CHECK(etag_list_match("*", e, true));
  CHECK(etag_list_match(" * ", e, false));
  CHECK(etag_list_match("\"x\", \"abc-1\"", e, true));
  CHECK(etag_list_match("\"x\",W/\"abc-1\" ,\"y\"", e, true));
  CHECK(etag_list_match(",, \"abc-1\" ,", e, true));
  CHECK(!etag_list_match("\"abc-2\"", e, true));
  CHECK(!etag_list_match("\"ABC-1\"", e, true)); /* case matters */
  CHECK(!etag_list_match("\"abc-1", e, true));
  CHECK(!etag_list_match("abc-1", e, true)); /* unquoted: malformed */
  CHECK(!etag_list_match("\"abc-1\" junk", e, true));
  CHECK(!etag_list_match("\"abc-1\", garbage", e, true));
  CHECK(!etag_list_match("w/\"abc-1\"", e, true)); /* W is case-sensitive */
  CHECK(!etag_list_match("\"abc 1\"", "\"abc 1\"", true)); /* no SP */
  CHECK(!etag_list_match("*, \"abc-1\"", e, true)); /* "*" stands alone */
  CHECK(!etag_list_match("", e, true));
  CHECK(!etag_list_match(NULL, e, true));
  CHECK(!etag_list_match("\"\"", e, true));
  CHECK(etag_list_match("\"\"", "\"\"", false));
  CHECK(etag_list_match("\"caf\xc3\xa9\"", "\"caf\xc3\xa9\"", false));
}

/* ------------------------------------------------------------ preconditions */

#define LM 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */
#define DATE_LM "Sun, 06 Nov 1994 08:49:37 GMT"
#define DATE_BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define DATE_AFTER "Sun, 06 Nov 1994 08:49:38 GMT"
#define ETAG "\"e-1\""

static conditional_result eval(const char *im, const char *ius, const char *inm,
                               const char *ims) {
  conditional_fields f = {im, ius, inm, ims};
  return conditional_evaluate(&f, ETAG, LM);
}

static void test_preconditions(void) {
  CHECK(eval(NULL, NULL, NULL, NULL) == COND_PROCEED);
  /* If-None-Match */
  CHECK(eval(NULL, NULL, ETAG, NULL) == COND_NOT_MODIFIED);
  CHECK(eval(NULL, NULL, "W/" ETAG, NULL) == COND_NOT_MODIFIED);
  CHECK(eval(NULL, NULL, "*", NULL) == COND_NOT_MODIFIED);
  CHECK(eval(NULL, NULL, "\"other\"", NULL) == COND_PROCEED);
  CHECK(eval(NULL, NULL, "garbage", NULL) == COND_PROCEED);
  /* If-Modified-Since */
  CHECK(eval(NULL, NULL, NULL, DATE_LM) == COND_NOT_MODIFIED);
  CHECK(eval(NULL, NULL, NULL, DATE_AFTER) == COND_NOT_MODIFIED);
  CHECK(eval(NULL, NULL, NULL, DATE_BEFORE) == COND_PROCEED);
  CHECK(eval(NULL, NULL, NULL, "Sunday, 06-Nov-94 08:49:37 GMT") ==
        COND_NOT_MODIFIED);
  CHECK(eval(NULL, NULL, NULL, "Sun Nov  6 08:49:37 1994") ==
        COND_NOT_MODIFIED);
  CHECK(eval(NULL, NULL, NULL, "not a date") == COND_PROCEED);
  CHECK(eval(NULL, NULL, NULL, DATE_LM " ") == COND_PROCEED);
  /* If-None-Match wins over If-Modified-Since, either way */
  CHECK(eval(NULL, NULL, "\"other\"", DATE_AFTER) == COND_PROCEED);
  CHECK(eval(NULL, NULL, ETAG, DATE_BEFORE) == COND_NOT_MODIFIED);
  /* If-Match (strong) */
  CHECK(eval(ETAG, NULL, NULL, NULL) == COND_PROCEED);
  CHECK(eval("*", NULL, NULL, NULL) == COND_PROCEED);
  CHECK(eval("W/" ETAG, NULL, NULL, NULL) == COND_PRECONDITION_FAILED);
  CHECK(eval("\"other\"", NULL, NULL, NULL) == COND_PRECONDITION_FAILED);
  /* If-Unmodified-Since, ignored under If-Match */
  CHECK(eval(NULL, DATE_LM, NULL, NULL) == COND_PROCEED);
  CHECK(eval(NULL, DATE_BEFORE, NULL, NULL) == COND_PRECONDITION_FAILED);
  CHECK(eval(NULL, "bogus", NULL, NULL) == COND_PROCEED);
  CHECK(eval(ETAG, DATE_BEFORE, NULL, NULL) == COND_PROCEED);
  /* 412 checks come before 304 checks */
  CHECK(eval("\"other\"", NULL, ETAG, NULL) == COND_PRECONDITION_FAILED);
  CHECK(eval(ETAG, NULL, ETAG, NULL) == COND_NOT_MODIFIED);
}

static void test_if_range(void) {
  CHECK(conditional_if_range(NULL, ETAG, LM));
  CHECK(conditional_if_range(ETAG, ETAG, LM));
  CHECK(!conditional_if_range("W/" ETAG, ETAG, LM)); /* weak never */
  CHECK(!conditional_if_range("\"other\"", ETAG, LM));
  CHECK(!conditional_if_range(ETAG " ", ETAG, LM));
  CHECK(!conditional_if_range(ETAG ", " ETAG, ETAG, LM)); /* not a list */
  CHECK(!conditional_if_range("\"e-1", ETAG, LM));
  CHECK(conditional_if_range(DATE_LM, ETAG, LM));
  CHECK(conditional_if_range("Sunday, 06-Nov-94 08:49:37 GMT", ETAG, LM));
  CHECK(!conditional_if_range(DATE_AFTER, ETAG, LM)); /* exact match only */
  CHECK(!conditional_if_range(DATE_BEFORE, ETAG, LM));
  CHECK(!conditional_if_range("garbage", ETAG, LM));
  CHECK(!conditional_if_range("", ETAG, LM));
}

/* ------------------------------------------------------------ listings */

static void test_listing_names(void) {
  CHECK(dir_listing_name_is_safe("a.txt"));
  CHECK(dir_listing_name_is_safe(".hidden"));
  CHECK(dir_listing_name_is_safe("..."));
  CHECK(dir_listing_name_is_safe("sp ace & <tag> \"q\" 'a' %41"));
  CHECK(dir_listing_name_is_safe("caf\xc3\xa9"));
  CHECK(!dir_listing_name_is_safe(""));
  CHECK(!dir_listing_name_is_safe("."));
  CHECK(!dir_listing_name_is_safe(".."));
  CHECK(!dir_listing_name_is_safe("a\\b"));
  CHECK(!dir_listing_name_is_safe("a/b"));
  CHECK(!dir_listing_name_is_safe("a\nb"));
  CHECK(!dir_listing_name_is_safe("a\rb"));
  CHECK(!dir_listing_name_is_safe("a\x1b[31m"));
  CHECK(!dir_listing_name_is_safe("a\x7f"));
  CHECK(!dir_listing_name_is_safe(NULL));
}

static void test_listing_escape(void) {
  dir_listing_buf b = {.limit = 1024};
  dir_listing_pct(&b, "a b/%?#&\"<>'~-._Z9\xc3\xa9");
  CHECK_STR(b.data, "a%20b%2F%25%3F%23%26%22%3C%3E%27~-._Z9%C3%A9");
  free(b.data);
  b = (dir_listing_buf){.limit = 1024};
  dir_listing_html(&b, "<a href=\"x\">&'</a>");
  CHECK_STR(b.data, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  free(b.data);
  /* an append that does not fit is dropped whole */
  b = (dir_listing_buf){.limit = 8};
  dir_listing_pct(&b, "abc");
  dir_listing_pct(&b, "  ");
  CHECK(b.full && b.len == 3);
  CHECK_STR(b.data, "abc");
  free(b.data);
}

static void test_listing_render(void) {
  dir_listing_entry e[] = {
      {"zeta.txt", false, 12},
      {"<b>&\"x\".html", false, 0},
      {"alpha dir", true, 4096},
  };
  dir_listing_buf page;
  CHECK(dir_listing_render("/a%20b/<x>/", e, 3, true, false, &page));
  CHECK(page.data != NULL && strlen(page.data) == page.len);
  const char *p = page.data;
  CHECK(strstr(p, "<title>Index of /a%20b/&lt;x&gt;/</title>") != NULL);
  CHECK(strstr(p, "<li><a href=\"../\">../</a></li>") != NULL);
  const char *a = strstr(p, "<a href=\"%3Cb%3E%26%22x%22.html\">"
                            "&lt;b&gt;&amp;&quot;x&quot;.html</a> 0 bytes");
  const char *b = strstr(p, "<a href=\"alpha%20dir/\">alpha dir/</a></li>");
  const char *z = strstr(p, "<a href=\"zeta.txt\">zeta.txt</a> 12 bytes");
  CHECK(a != NULL && b != NULL && z != NULL);
  CHECK(a < b && b < z); /* sorted by name, bytewise */
  CHECK(strstr(p, "<b>") == NULL && strstr(p, "truncated") == NULL);
  CHECK(strstr(p, "</ul>\n</body></html>\n") != NULL);
  free(page.data);

  CHECK(dir_listing_render("/", NULL, 0, false, true, &page));
  CHECK(strstr(page.data, "../") == NULL);
  CHECK(strstr(page.data, "truncated") != NULL);
  free(page.data);
}

/* Many long names: the page stops below the cap, marked truncated, and
 * still ends properly. */
static void test_listing_cap(void) {
  size_t n = 6000;
  dir_listing_entry *e = calloc(n, sizeof *e);
  char *names = malloc(n * 256);
  CHECK(e != NULL && names != NULL);
  if (e == NULL || names == NULL) {
    free(e);
    free(names);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    char *s = names + i * 256;
    memset(s, '<', 255);
    snprintf(s, 12, "%010zu", i);
    s[10] = '<';
    s[255] = '\0';
    e[i] = (dir_listing_entry){s, false, i};
  }
  dir_listing_buf page;
  CHECK(dir_listing_render("/big/", e, n, true, false, &page));
  CHECK(page.len <= DIR_LISTING_MAX_BYTES);
  CHECK(page.len > DIR_LISTING_MAX_BYTES - 4096);
  CHECK(strstr(page.data, "truncated") != NULL);
  CHECK(strstr(page.data, "0000000000") != NULL);
  CHECK(strstr(page.data, "0000005999") == NULL);
  size_t tail = strlen("</ul>\n</body></html>\n");
  CHECK(strcmp(page.data + page.len - tail, "</ul>\n</body></html>\n") == 0);
  free(page.data);
  free(names);
  free(e);
}

int main(void) {
  test_range_single();
  test_range_unsatisfiable();
  test_range_ignored();
  test_range_multiple();
  test_dates();
  test_date_format();
  test_etags();
  test_preconditions();
  test_if_range();
  test_listing_names();
  test_listing_escape();
  test_listing_render();
  test_listing_cap();
  return check_report("test_static_ranges");
}
