#include "io/reuseport_bpf.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#ifdef __linux__
#include <linux/bpf.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

/* For SK_REUSEPORT programs the packet starts at the UDP header (the
 * kernel's sk_reuseport_md: "it begins from the tcp/udp header"), so the
 * QUIC packet is 8 bytes in. */
#define UDP_HEADER 8
/* RFC 8999: a long header is flags, a 4-byte version, the DCID length,
 * then the DCID. */
#define LONG_DCID_LEN_AT 5
#define LONG_DCID_AT 6
#define SK_PASS_VERDICT 1
/* Stack slots: one byte read from the packet, and the map key. */
#define STACK_BYTE (-8)
#define STACK_KEY (-4)

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

/* gcc's -Wconversion flags every store into a 4-bit field, masked or
 * not; the registers are 0..10. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off,
                            int32_t imm) {
  struct bpf_insn i;
  memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
#pragma GCC diagnostic pop

static struct bpf_insn mov_reg(uint8_t dst, uint8_t src) {
  return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}

static struct bpf_insn mov_imm(uint8_t dst, int32_t imm) {
  return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

static struct bpf_insn add_imm(uint8_t dst, int32_t imm) {
  return insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm);
}

static struct bpf_insn call(int32_t helper) {
  return insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper);
}

typedef struct prog {
  struct bpf_insn *i;
  size_t n;
} prog;

static void emit(prog *p, struct bpf_insn i) {
  if (p->n < REUSEPORT_BPF_MAX_INSNS)
    p->i[p->n] = i;
  p->n++;
}

/* A jump whose target is fixed later (patch_to_here); returns its index. */
static size_t emit_jump(prog *p, uint8_t op, uint8_t reg, int32_t imm) {
  emit(p, insn(BPF_JMP | op | BPF_K, reg, 0, 0, imm));
  return p->n - 1;
}

static void patch_to_here(prog *p, size_t at) {
  if (at < REUSEPORT_BPF_MAX_INSNS && p->n < REUSEPORT_BPF_MAX_INSNS)
    p->i[at].off = (int16_t)(p->n - at - 1);
}

/* r7 = the packet byte at offset r8 (r8 is set by the caller), via
 * bpf_skb_load_bytes(ctx, r8, fp + STACK_BYTE, 1); on failure jumps to
 * the exit (the index is appended to fails). */
static void load_byte_at_r8(prog *p, size_t *fails, size_t *nfails) {
  emit(p, mov_reg(BPF_REG_1, BPF_REG_6));
  emit(p, mov_reg(BPF_REG_2, BPF_REG_8));
  emit(p, mov_reg(BPF_REG_3, BPF_REG_10));
  emit(p, add_imm(BPF_REG_3, STACK_BYTE));
  emit(p, mov_imm(BPF_REG_4, 1));
  emit(p, call(BPF_FUNC_skb_load_bytes));
  fails[(*nfails)++] = emit_jump(p, BPF_JNE, BPF_REG_0, 0);
  emit(p,
       insn(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_7, BPF_REG_10, STACK_BYTE, 0));
}

/* bpf_sk_select_reuseport(ctx, map, &key, 0) with key = r7. */
static void select_socket(prog *p, int map_fd) {
  emit(p, insn(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_7, STACK_KEY, 0));
  emit(p, mov_reg(BPF_REG_1, BPF_REG_6));
  emit(p, insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0,
               map_fd));
  emit(p, insn(0, 0, 0, 0, 0)); /* the upper half of the 64-bit immediate */
  emit(p, mov_reg(BPF_REG_3, BPF_REG_10));
  emit(p, add_imm(BPF_REG_3, STACK_KEY));
  emit(p, mov_imm(BPF_REG_4, 0));
  emit(p, call(BPF_FUNC_sk_select_reuseport));
}

/* Short header: the socket at the steering byte (whether one is there or
 * not, the exit follows). */
static void steer_short(prog *p, int32_t off, int map_fd, size_t *fails,
                        size_t *nfails) {
  emit(p, mov_imm(BPF_REG_8, UDP_HEADER + 1 + off));
  load_byte_at_r8(p, fails, nfails); /* r7 = the steering byte */
  select_socket(p, map_fd);
}

/* r7 = the long header's steering byte; jumps to the index appended to
 * misses when the DCID is too short to hold it or unreadable. */
static void load_long_byte(prog *p, int32_t off, size_t *misses,
                           size_t *nmisses) {
  emit(p, mov_imm(BPF_REG_8, UDP_HEADER + LONG_DCID_LEN_AT));
  load_byte_at_r8(p, misses, nmisses);
  misses[(*nmisses)++] = emit_jump(p, BPF_JLE, BPF_REG_7, off);
  emit(p, mov_imm(BPF_REG_8, UDP_HEADER + LONG_DCID_AT + off));
  load_byte_at_r8(p, misses, nmisses);
}

/* What both programs start with: the first byte; a short header is
 * steered by the socket at its steering byte, then jumps to the exit
 * (indexes appended to exits). Returns the jump to patch where the long
 * header's steering begins. */
static size_t steer_short_or_branch(prog *p, int32_t off, int map_fd,
                                    size_t *exits, size_t *nexits) {
  emit(p, mov_reg(BPF_REG_6, BPF_REG_1)); /* ctx, kept across calls */
  emit(p, mov_imm(BPF_REG_8, UDP_HEADER));
  load_byte_at_r8(p, exits, nexits); /* r7 = the first byte */
  size_t to_long = emit_jump(p, BPF_JSET, BPF_REG_7, 0x80);
  steer_short(p, off, map_fd, exits, nexits);
  exits[(*nexits)++] = emit_jump(p, BPF_JA, 0, 0);
  return to_long;
}

/* The program without the split: long headers are steered like short
 * ones. */
static void build_plain(prog *p, int map_fd, int32_t off) {
  size_t exits[8], nexits = 0;
  patch_to_here(p, steer_short_or_branch(p, off, map_fd, exits, &nexits));
  load_long_byte(p, off, exits, &nexits);
  select_socket(p, map_fd);
  /* Selected or not, SK_PASS: without a selection the kernel hashes. */
  for (size_t k = 0; k < nexits; k++)
    patch_to_here(p, exits[k]);
}

/* r7 = the kernel's 4-tuple hash % ways. */
static void load_hash_way(prog *p, int32_t ways) {
  emit(p, insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_7, BPF_REG_6,
               (int16_t)offsetof(struct sk_reuseport_md, hash), 0));
  emit(p, insn(BPF_ALU64 | BPF_MOD | BPF_K, BPF_REG_7, 0, 0, ways));
}

/* The program with the split (see reuseport_bpf_prog_load): a long header
 * tries the second socket of the DCID's owner, then its only socket (an
 * owner without the split), then a second socket by the 4-tuple hash. */
static void build_split(prog *p, int map_fd, int32_t off, int32_t ways,
                        int32_t first) {
  size_t exits[8], nexits = 0, misses[4], nmisses = 0;
  patch_to_here(p, steer_short_or_branch(p, off, map_fd, exits, &nexits));
  load_long_byte(p, off, misses, &nmisses);
  emit(p, mov_reg(BPF_REG_9, BPF_REG_7)); /* the byte, kept across calls */
  emit(p, add_imm(BPF_REG_7, REUSEPORT_BPF_LONG_BASE));
  select_socket(p, map_fd);
  exits[nexits++] = emit_jump(p, BPF_JEQ, BPF_REG_0, 0);
  emit(p, mov_reg(BPF_REG_7, BPF_REG_9));
  select_socket(p, map_fd);
  exits[nexits++] = emit_jump(p, BPF_JEQ, BPF_REG_0, 0);
  for (size_t k = 0; k < nmisses; k++)
    patch_to_here(p, misses[k]);
  /* Named no one: a way by hash, first in a generation picked by other
   * bits of the hash (so live servers of several generations share new
   * clients), then, where that one has no such socket, in the newest. */
  load_hash_way(p, ways);
  emit(p, mov_reg(BPF_REG_9, BPF_REG_7));
  emit(p, insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_8, BPF_REG_6,
               (int16_t)offsetof(struct sk_reuseport_md, hash), 0));
  emit(p, insn(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_8, 0, 0, 16));
  emit(p, insn(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_8, 0, 0, 7));
  emit(p, insn(BPF_ALU64 | BPF_LSH | BPF_K, BPF_REG_8, 0, 0, 5));
  emit(p, insn(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_7, BPF_REG_8, 0, 0));
  emit(p, add_imm(BPF_REG_7, REUSEPORT_BPF_LONG_BASE));
  select_socket(p, map_fd);
  exits[nexits++] = emit_jump(p, BPF_JEQ, BPF_REG_0, 0);
  emit(p, mov_reg(BPF_REG_7, BPF_REG_9));
  emit(p, add_imm(BPF_REG_7, first));
  select_socket(p, map_fd);
  /* Selected or not, SK_PASS: without a selection the kernel hashes. */
  for (size_t k = 0; k < nexits; k++)
    patch_to_here(p, exits[k]);
}

size_t reuseport_bpf_build(void *out, int map_fd, size_t cid_offset,
                           size_t split_ways, uint32_t split_first) {
  prog p = {out, 0};
  int32_t off = (int32_t)(cid_offset & 0xff);
  if (split_ways > REUSEPORT_BPF_SPLIT_WAYS_MAX)
    split_ways = REUSEPORT_BPF_SPLIT_WAYS_MAX;
  if (split_ways)
    build_split(&p, map_fd, off, (int32_t)split_ways,
                (int32_t)(split_first % REUSEPORT_BPF_MAP_ENTRIES));
  else
    build_plain(&p, map_fd, off);
  emit(&p, mov_imm(BPF_REG_0, SK_PASS_VERDICT));
  emit(&p, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p.n;
}

int reuseport_bpf_map_create(void) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_REUSEPORT_SOCKARRAY;
  a.key_size = sizeof(uint32_t);
  a.value_size = sizeof(uint32_t); /* the socket's fd on update */
  a.max_entries = REUSEPORT_BPF_MAP_ENTRIES;
  return (int)sys_bpf(BPF_MAP_CREATE, &a);
}

int reuseport_bpf_prog_load(int map_fd, size_t cid_offset, size_t split_ways,
                            uint32_t split_first, char *log, size_t log_len) {
  struct bpf_insn code[REUSEPORT_BPF_MAX_INSNS];
  size_t n =
      reuseport_bpf_build(code, map_fd, cid_offset, split_ways, split_first);
  if (n > REUSEPORT_BPF_MAX_INSNS) {
    errno = E2BIG;
    return -1;
  }
  /* No GPL-only helper is used, so the license string is not checked. */
  static const char license[] = "MIT";
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
  a.insn_cnt = (uint32_t)n;
  a.insns = (uint64_t)(uintptr_t)code;
  a.license = (uint64_t)(uintptr_t)license;
  if (log && log_len > 1) {
    log[0] = '\0';
    a.log_level = 1;
    a.log_size = (uint32_t)(log_len > UINT32_MAX ? UINT32_MAX : log_len);
    a.log_buf = (uint64_t)(uintptr_t)log;
  }
  int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (fd < 0 && errno == ENOSPC && log) {
    /* the log overflowed; the load itself may have been fine */
    a.log_level = 0;
    a.log_size = 0;
    a.log_buf = 0;
    fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  }
  return fd;
}

int reuseport_bpf_map_set(int map_fd, uint32_t slot, int udp_fd) {
  uint32_t value = (uint32_t)udp_fd;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)map_fd;
  a.key = (uint64_t)(uintptr_t)&slot;
  a.value = (uint64_t)(uintptr_t)&value;
  a.flags = BPF_ANY;
  return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

int reuseport_bpf_attach(int udp_fd, int prog_fd) {
  return setsockopt(udp_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd,
                    sizeof prog_fd);
}

#else /* !__linux__ */

int reuseport_bpf_map_create(void) {
  errno = ENOSYS;
  return -1;
}

int reuseport_bpf_prog_load(int map_fd, size_t cid_offset, size_t split_ways,
                            uint32_t split_first, char *log, size_t log_len) {
  if (log && log_len)
    log[0] = '\0';
  errno = ENOSYS;
  return -1;
}

int reuseport_bpf_map_set(int map_fd, uint32_t slot, int udp_fd) {
  errno = ENOSYS;
  return -1;
}

int reuseport_bpf_attach(int udp_fd, int prog_fd) {
  errno = ENOSYS;
  return -1;
}

size_t reuseport_bpf_build(void *out, int map_fd, size_t cid_offset,
                           size_t split_ways, uint32_t split_first) {
  return 0;
}

#endif
