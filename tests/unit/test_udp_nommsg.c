/* The recvmmsg/sendmmsg fallback for real: a seccomp filter makes both
 * calls fail with ENOSYS (as an old kernel, a sandbox or an emulator
 * would), and a batch must notice, switch to recvmsg/sendmsg for good and
 * deliver every datagram. A test binary of its own, because the filter
 * stays on the process. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "io/udp.h"

#define DGRAM 1200

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#endif

/* Returns false when the filter cannot be installed here. */
static bool deny_mmsg(void) {
#ifdef AUDIT_ARCH_HERE
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_recvmmsg, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendmmsg, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0],
                            .filter = code};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#else
  return false;
#endif
}

int main(void) {
  if (!deny_mmsg()) {
    printf("test_udp_nommsg: seccomp unavailable here, skipped\n");
    return 0;
  }
  struct mmsghdr m;
  CHECK(sendmmsg(0, &m, 0, 0) == -1 && errno == ENOSYS); /* the filter works */
  char err[128] = "";
  struct sockaddr_storage tx_addr, rx_addr;
  socklen_t tx_len, rx_len;
  int tx = udp_open("127.0.0.1", 0, &tx_addr, &tx_len, err, sizeof err);
  int rx = udp_open("127.0.0.1", 0, &rx_addr, &rx_len, err, sizeof err);
  CHECK(tx >= 0 && rx >= 0);
  udp_batch out, in;
  CHECK(udp_batch_init(&out, 16, DGRAM) == 0);
  CHECK(udp_batch_init(&in, 16, DGRAM) == 0);
  for (int round = 0; round < 2; round++) {
    for (uint8_t i = 0; i < 5; i++) {
      memset(udp_batch_buf(&out, out.count), i, DGRAM);
      udp_batch_push(&out, DGRAM, (struct sockaddr *)&rx_addr, rx_len);
    }
    CHECK(udp_flush_nowait(tx, &out) == 0);
    CHECK(out.single); /* switched on ENOSYS, and stays so */
    int got = 0;
    for (int waits = 0; got < 5 && waits < 5; waits++) {
      struct pollfd p = {.fd = rx, .events = POLLIN};
      if (poll(&p, 1, 1000) != 1)
        continue;
      int n = udp_recv_batch(rx, &in);
      CHECK(n >= 0);
      for (int k = 0; k < n; k++, got++)
        CHECK(in.msgs[k].msg_len == DGRAM &&
              udp_batch_buf(&in, (size_t)k)[0] == (uint8_t)got);
    }
    CHECK(got == 5);
    CHECK(in.single);
  }
  udp_batch_free(&out);
  udp_batch_free(&in);
  close(tx);
  close(rx);
  return check_report("test_udp_nommsg");
}
