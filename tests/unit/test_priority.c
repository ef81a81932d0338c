#include <string.h>

#include "check.h"
#include "http/priority.h"

static priority parse(const char *s) {
  priority p = {PRIORITY_DEFAULT_URGENCY, false};
  priority_parse(s, strlen(s), &p);
  return p;
}

int main(void) {
  priority p = parse("u=0");
  CHECK(p.urgency == 0 && !p.incremental);
  p = parse("u=7, i");
  CHECK(p.urgency == 7 && p.incremental);
  p = parse("i, u=5");
  CHECK(p.urgency == 5 && p.incremental);
  p = parse("i=?0,u=1");
  CHECK(p.urgency == 1 && !p.incremental);
  p = parse("i=?1");
  CHECK(p.urgency == 3 && p.incremental);
  p = parse("u=8"); /* out of range: ignored */
  CHECK(p.urgency == 3);
  p = parse("u=-1");
  CHECK(p.urgency == 3);
  p = parse("u=12");
  CHECK(p.urgency == 3);
  p = parse("u=2;foo=bar, x=9, i");
  CHECK(p.urgency == 2 && p.incremental);
  p = parse("");
  CHECK(p.urgency == 3 && !p.incremental);
  p = parse("  u=4  ");
  CHECK(p.urgency == 4);
  p = parse("i=1"); /* integer, not a boolean: ignored */
  CHECK(!p.incremental);
  p = parse("uu=1, ii");
  CHECK(p.urgency == 3 && !p.incremental);
  return check_report("test_priority");
}
