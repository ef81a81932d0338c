#include "io/header_split.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "io/udp.h"

bool header_split_disabled_by_env(void) {
  const char *env = getenv("H3Q_HEADER_SPLIT");
  return env && strcmp(env, "0") == 0;
}

int header_split_open(const char *addr, uint16_t port, size_t rcvbuf, char *err,
                      size_t errlen) {
  struct sockaddr_storage local;
  socklen_t local_len;
  int fd = udp_open(addr, port, &local, &local_len, err, errlen);
  if (fd < 0)
    return -1;
  int rcv = 0, snd = 0;
  udp_set_buffer_sizes(fd, rcvbuf, 0, &rcv, &snd);
  return fd;
}
