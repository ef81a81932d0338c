#include "util/io_epoch.h"

#include <stdatomic.h>

/* Sequentially consistent: a check stamped with the value it loaded must
 * come after the read that stored it, on any thread. */
static _Atomic uint64_t epoch;

uint64_t io_epoch_now(void) {
  return atomic_load(&epoch);
}

void io_epoch_advance(void) {
  atomic_fetch_add(&epoch, 1);
}
