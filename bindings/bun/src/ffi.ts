// The C ABI of libh3q that this package uses (include/h3q.h, "host"):
// scalars and pointers only, no struct layouts except the all-uint64
// h3q_server_stats (see stats.ts).
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const { ptr, i32, u32, u16, u64, i64, usize, u64_fast, i64_fast, bool, void: v, function: fn } =
  FFIType;

const symbols = {
  h3q_version: { args: [], returns: FFIType.cstring },
  h3q_strerror: { args: [i32], returns: FFIType.cstring },
  h3q_config_new: { args: [], returns: ptr },
  h3q_config_set: { args: [ptr, ptr, ptr], returns: i32 },
  h3q_config_free: { args: [ptr], returns: v },
  h3q_generate_self_signed_cert: { args: [ptr, ptr, ptr, u32], returns: i32 },
  h3q_server_get_stats: { args: [ptr, ptr, usize], returns: usize },
  h3q_server_route: { args: [ptr, ptr, ptr, ptr, ptr], returns: i32 },
  h3q_static_new: { args: [ptr, ptr, ptr], returns: ptr },
  h3q_static_free: { args: [ptr], returns: v },
  h3q_static_handler: { args: [ptr, ptr, ptr], returns: i32 },
  h3q_host_new: { args: [ptr, usize, usize, ptr, ptr, usize], returns: i32 },
  h3q_host_start: { args: [ptr, fn], returns: i32 },
  h3q_host_port: { args: [ptr], returns: u16 },
  h3q_host_server: { args: [ptr], returns: ptr },
  h3q_host_stop: { args: [ptr, bool], returns: i32 },
  h3q_host_free: { args: [ptr], returns: v },
  h3q_host_poll: { args: [ptr], returns: u64_fast },
  h3q_host_poll_into: { args: [ptr, ptr, usize, ptr, usize], returns: u64_fast },
  h3q_host_record_size: { args: [], returns: u64_fast },
  h3q_host_cork: { args: [ptr, bool], returns: i32 },
  h3q_host_flush: { args: [ptr], returns: i32 },
  h3q_host_start_inline: { args: [ptr, fn], returns: i32 },
  h3q_host_pump: { args: [ptr], returns: i32 },
  h3q_host_arm: { args: [ptr], returns: i32 },
  h3q_host_event_type: { args: [ptr, usize], returns: i32 },
  h3q_host_event_id: { args: [ptr, usize], returns: u32 },
  h3q_host_event_value: { args: [ptr, usize], returns: i64_fast },
  h3q_host_event_data: { args: [ptr, usize], returns: ptr },
  h3q_host_event_len: { args: [ptr, usize], returns: u64_fast },
  h3q_host_event_take: { args: [ptr, usize], returns: ptr },
  h3q_host_data_free: { args: [ptr, ptr], returns: v },
  h3q_host_respond: { args: [ptr, u32, i32, ptr, usize, ptr, usize, i32], returns: i32 },
  h3q_host_respond_file: { args: [ptr, u32, i32, ptr, usize, ptr, i64], returns: i32 },
  h3q_host_write: { args: [ptr, u32, ptr, usize, i32], returns: i32 },
  h3q_host_trailers: { args: [ptr, u32, ptr, usize], returns: i32 },
  h3q_host_reset: { args: [ptr, u32, u64], returns: i32 },
  h3q_host_consume: { args: [ptr, u32, usize], returns: i32 },
  h3q_host_webtransport: { args: [ptr, ptr], returns: i32 },
  h3q_host_wt_send_datagram: { args: [ptr, u32, ptr, usize], returns: i32 },
  h3q_host_wt_close: { args: [ptr, u32, u32, ptr, usize], returns: i32 },
  h3q_host_wt_open_stream: { args: [ptr, u32, bool, ptr], returns: i32 },
  h3q_host_wt_stop: { args: [ptr, u32, u32], returns: i32 },
} as const;

export type H3qLib = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

/** Where libh3q.so is looked for, in order. */
export function libraryCandidates(): string[] {
  const here = dirname(new URL(import.meta.url).pathname);
  // An explicit H3Q_LIB is the only candidate: a wrong path is an error,
  // not a reason to load some other copy.
  if (process.env.H3Q_LIB) return [resolve(process.env.H3Q_LIB)];
  const list: string[] = [];
  list.push(join(here, "..", "libh3q.so")); // next to the package
  list.push(join(here, "..", "..", "..", "build", "libh3q.so")); // source tree
  return list;
}

let loaded: H3qLib | null = null;

/** Loads libh3q.so once; throws an Error that lists the places tried. */
export function lib(): H3qLib {
  if (loaded) return loaded;
  const tried = libraryCandidates();
  const path = tried.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `h3q: libh3q.so not found (tried ${tried.join(", ")}). Build it with ` +
        "`make build` in the h3q source tree, or set H3Q_LIB=/path/to/libh3q.so.",
    );
  }
  try {
    loaded = dlopen(path, symbols).symbols;
  } catch (e) {
    throw new Error(`h3q: cannot use ${path} (${(e as Error).message}); is it older than this package? Rebuild it.`);
  }
  return loaded;
}

export const EVENT = {
  REQUEST: 1,
  BODY: 2,
  BODY_END: 3,
  WRITTEN: 4,
  CLOSED: 5,
  STOPPED: 6,
  WT_SESSION: 7,
  WT_DATAGRAM: 8,
  WT_CLOSED: 9,
  WT_STREAM: 10,
} as const;

export const END = 1;

// h3q_error codes the package tells apart (include/h3q.h).
export const ERR = {
  INVAL: -1,
  STATE: -4,
  NOTFOUND: -12,
  FORBIDDEN: -13,
} as const;
