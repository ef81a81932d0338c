// h3q for Bun: an HTTP/3 server with Bun.serve's shape, on libh3q.
//
// The HTTP/3 loop runs where ServeOptions.loop says. Inline (the default
// on one CPU) the JS thread drives it with h3q_host_pump, before a batch
// and again at the uncork, and a watcher thread of libh3q's only calls
// notify when a datagram or a timer is due; the rest of this comment
// describes the threaded mode, whose queues inline mode shares.
//
// The server loop runs on a thread of libh3q's own. It queues events
// (request, body chunk, body end, bytes written, stream closed) and calls a
// threadsafe JSCallback, without arguments, once per loop iteration that
// queued any while JS was idle; that callback runs on the JS thread, which
// then drains the queue with h3q_host_poll_into: one call copies a batch of
// fixed records and their bytes into buffers of ours (body chunks come as
// buffers of their own, handed over without a copy). Responses go back as
// commands, held back (h3q_host_cork) until the batch and the promise
// reactions it started have run, so that the loop thread wakes once per
// batch (and once per EARLY_FLUSH answers to one connection in a row, so
// that a client with many requests in one batch gets the first answers
// while the rest are made). Nothing crosses the boundary but numbers and
// pointers, and no pointer to JS memory outlives a call (commands copy
// what they are given).
import { JSCallback, toArrayBuffer } from "bun:ffi";
import { availableParallelism } from "node:os";
import { END, ERR, EVENT, lib, type H3qLib } from "./ffi.ts";

export { libraryCandidates } from "./ffi.ts";

type MaybePromise<T> = T | Promise<T>;
export type Handler = (req: H3qRequest, server: Server) => MaybePromise<Response>;
type MethodMap = Partial<Record<string, Handler | Response>>;
export type RouteValue = Handler | Response | MethodMap;

/** A Web Request with the route parameters of the matched route. */
export interface H3qRequest extends Request {
  params: Record<string, string>;
}

export interface WebTransportCloseInfo {
  closeCode?: number;
  reason?: string;
}

/** A bidirectional WebTransport stream, as in the browser's API. */
export interface WebTransportBidirectionalStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

/** A WebTransport session, shaped like the browser's WebTransport object:
 * datagrams as a readable and a writable stream, the streams the client
 * opens as streams of streams, streams of our own, closed, close().
 * Stream bytes have backpressure (bodyWindow, writeWindow). Cancelling a
 * readable asks the client to stop sending, aborting a writable resets
 * it; either takes the WebTransport code from reason.streamErrorCode
 * (default 0). A stream the client resets errors with an Error whose
 * streamErrorCode is the client's code. */
export interface WebTransportSession {
  readonly request: H3qRequest;
  readonly datagrams: { readonly readable: ReadableStream<Uint8Array>; readonly writable: WritableStream<Uint8Array> };
  readonly incomingBidirectionalStreams: ReadableStream<WebTransportBidirectionalStream>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  /** Opens a stream to the client; rejects when the session is gone or
   * the client's stream limit is reached. */
  createBidirectionalStream(): Promise<WebTransportBidirectionalStream>;
  createUnidirectionalStream(): Promise<WritableStream<Uint8Array>>;
  readonly closed: Promise<WebTransportCloseInfo>;
  close(info?: WebTransportCloseInfo): void;
}

export type WebTransportHandler = (session: WebTransportSession) => void | Promise<void>;

export interface ServeOptions {
  port?: number; // 0 (default) picks a free port
  hostname?: string; // default "0.0.0.0"
  cert: string | { path: string }; // PEM file path (or Bun.file(path))
  key: string | { path: string };
  fetch?: Handler;
  routes?: Record<string, RouteValue>;
  /** Directories served by libh3q itself, without JavaScript per request:
   * URL prefix -> directory, e.g. { "/assets": "./public" }. GET and HEAD,
   * with ranges, etags and 304s; no symlinks, nothing outside the
   * directory. These paths never reach fetch or routes. */
  files?: Record<string, string>;
  /** WebTransport: path pattern -> handler, called once per accepted
   * session (patterns as in routes: ":param" segments, a final "*"). */
  webtransport?: Record<string, WebTransportHandler>;
  /** Called with a handler's exception; its Response replaces the 500. */
  error?: (err: unknown) => MaybePromise<Response>;
  /** Request body bytes read ahead per stream (default 256 KiB). */
  bodyWindow?: number;
  /** Response body bytes queued per stream before writes wait (1 MiB). */
  writeWindow?: number;
  /** Events waiting for JS before new requests get 503 (65536). */
  maxEvents?: number;
  /** Any h3q_config field by name, e.g. { idle_timeout_ms: 10000 }. */
  config?: Record<string, string | number | boolean>;
  /** Where the HTTP/3 loop runs. "thread": a thread of libh3q's own,
   * beside the JS thread (the HTTP/3 work runs in parallel with
   * JavaScript). "inline": on the JS thread, between handlers, with a
   * watcher thread that only wakes it; on one core this saves the thread
   * switches (measured in bench/README.md). Default: "inline" when the
   * process may use one CPU only (os.availableParallelism()), else
   * "thread"; the H3Q_LOOP environment variable overrides the default. */
  loop?: "thread" | "inline";
  /** Shorthands for common h3q_config limits. */
  maxRequestBodySize?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
}

export interface Server {
  readonly port: number;
  readonly hostname: string;
  readonly url: URL;
  /** Stops the server. graceful (default true) lets requests in progress
   * finish within drain_timeout_ms; false resets them. Resolves when the
   * loop thread has ended and everything is freed. */
  stop(graceful?: boolean): Promise<void>;
  /** Counters of the C server (h3q_server_stats). */
  stats(): Record<string, number>;
  /** Streams the JS side currently tracks. */
  readonly pendingRequests: number;
}

// ----------------------------------------------------------- trailers

const responseTrailers = new WeakMap<Response, TrailerSource>();
// Until withTrailers is first called, responses skip the WeakMap lookup.
let anyTrailers = false;
const requestTrailerMap = new WeakMap<Request, Promise<Headers>>();
type TrailerSource = HeadersInit | (() => MaybePromise<HeadersInit>);

/** Attaches trailers to a response: sent after the body. Pass a function
 * (sync or async) to compute them once the body has been sent. Returns the
 * same Response. */
export function withTrailers(res: Response, trailers: TrailerSource): Response {
  anyTrailers = true;
  responseTrailers.set(res, trailers);
  return res;
}

/** The request's trailers; resolves once the body has been read to the
 * end (empty Headers when the client sent none). */
export function requestTrailers(req: Request): Promise<Headers> {
  return requestTrailerMap.get(req) ?? Promise.resolve(new Headers());
}

// ------------------------------------------------------------- helpers

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);
const SMALL_BODY = 64 * 1024;
// Responses to one connection in a row after which the loop thread sends
// what is queued without waiting for the uncork. A client with many
// requests in flight on one connection (1 x 100) otherwise waits idle for
// the whole batch; answers spread over connections (20 x 10) still leave
// at the uncork, where each connection's go out together (measured in
// bench/README.md).
const EARLY_FLUSH = 32;

// Where the HTTP/3 loop runs (ServeOptions.loop).
function loopMode(o: ServeOptions): "thread" | "inline" {
  const mode = o.loop ?? process.env.H3Q_LOOP ?? (availableParallelism() > 1 ? "thread" : "inline");
  if (mode !== "thread" && mode !== "inline") throw new TypeError(`h3q: loop must be "thread" or "inline", not ${mode}`);
  return mode;
}

// h3q_host_record: u32 type, u32 id, i64 value, owned pointer, u64 offset,
// u64 len (include/h3q.h), read as little-endian 32-bit words.
const RECORD_SIZE = 40;
const RECORD_WORDS = RECORD_SIZE / 4;
const MAX_RECORDS = 1024;
const EVENT_BYTES = 256 * 1024;

// Encoded strings by their text, for what most responses repeat (header
// sections, file paths). Commands copy what they are given, so one
// encoding serves every response. Cleared when full: a server with ever
// new values pays the encoding as it would without the cache.
const ENCODED_MAX = 256;
const ENCODED_LEN_MAX = 1024;
const encodedCache = new Map<string, Uint8Array>();

function encodeCached(s: string): Uint8Array {
  if (s.length === 0) return EMPTY;
  let bytes = encodedCache.get(s);
  if (bytes !== undefined) return bytes;
  bytes = encoder.encode(s);
  if (s.length <= ENCODED_LEN_MAX) {
    if (encodedCache.size >= ENCODED_MAX) encodedCache.clear();
    encodedCache.set(s, bytes);
  }
  return bytes;
}

function fieldsBlob(fields: Iterable<[string, string]>): Uint8Array {
  let s = "";
  for (const [n, v] of fields) s += n + "\0" + v + "\0";
  return s.length ? encoder.encode(s) : EMPTY;
}

// The content-type the last headersBlob call saw (null: none), so that
// ownBlob need not look it up again.
let lastContentType: string | null = null;

// A Response's header section as name\0value\0 pairs. toJSON (Bun's) is
// the cheapest walk over Headers (measured on Bun 1.4.4: 0.2 µs against
// 0.5 for iterating): values combined as iteration combines them,
// set-cookie as an array of its own lines.
function headersBlob(headers: Headers): Uint8Array {
  const json = (headers as Headers & { toJSON(): Record<string, string | string[]> }).toJSON();
  let s = "";
  lastContentType = null;
  for (const n in json) {
    const v = json[n];
    if (typeof v === "string") {
      s += n + "\0" + v + "\0";
      if (n === "content-type") lastContentType = v;
    } else for (const line of v) s += n + "\0" + line + "\0";
  }
  return encodeCached(s);
}

function parseFields(parts: string[], from: number): [string, string][] {
  const out: [string, string][] = [];
  for (let i = from; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
  return out;
}

// Appends a header section's name\0value\0 pairs (parts[from..]) to
// headers. Appending to a Request's own Headers costs half of what a
// record or pairs in its init do (measured on Bun 1.4.4: 0.30 against
// 0.63 µs with one field, 1.0 against 1.6 with twelve), with the same
// validation and the same joining of repeated names.
function appendFields(headers: Headers, parts: string[], from: number): void {
  for (let i = from; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1]);
}

function cstr(s: string): Uint8Array {
  return encoder.encode(s + "\0");
}

function cstrCached(s: string): Uint8Array {
  return encodeCached(s + "\0");
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") return encoder.encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError("h3q: response body chunks must be bytes or strings");
}

const ignore = () => {};
const WT_CODE = 0x100000000; // CLOSED values at and above: a WebTransport code

// The error of a WebTransport stream the client reset or stopped (value:
// 2^32 + its code), shaped like the browser's WebTransportError.
function wtStreamError(value: number): Error {
  const code = value - WT_CODE;
  return Object.assign(new Error(`h3q: WebTransport stream reset by the client (code ${code})`), {
    source: "stream",
    streamErrorCode: code,
  });
}

// A WebTransport code from a cancel or abort reason (WebTransportError-like).
function streamErrorCode(reason: unknown): number {
  const code = (reason as { streamErrorCode?: unknown } | null)?.streamErrorCode;
  return typeof code === "number" && code >= 0 ? code >>> 0 : 0;
}
// Content types for which Response.formData() reads the body.
const FORM_TYPE = /form/i;

/** The Blob behind a Response body made of a Blob, a Bun.file() or a
 * string, without reading it; null for any other body, which is left
 * untouched. Bun keeps such a body as its Blob until it is read, and
 * res.body turns it into a lazy stream that has not started. formData()
 * turns that stream back into the Blob (locking and closing the stream)
 * before it checks the content type and refuses the body; a stream of the
 * handler's it leaves as it was, unlocked and unread. So a body locked
 * after formData() is Bun's own, and blob() then returns its Blob at once
 * (a file's has its path in name). Measured on Bun 1.4.4: about 1.5 µs
 * of CPU against 15 µs for reading a file body through its stream;
 * bun.package's tests check each kind of body. */
function ownBlob(res: Response, body: ReadableStream, type: string | null): Blob | Promise<Blob> | null {
  if (body.locked) return null;
  if (type !== null && FORM_TYPE.test(type)) return null; // formData() would read it
  // The refusal is an Error: without a stack trace it costs half as much.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    res.formData().catch(ignore);
  } catch {
    return null; // not expected: then the body is read as a stream
  } finally {
    Error.stackTraceLimit = limit;
  }
  if (!body.locked) return null;
  const p = res.blob();
  return Bun.peek.status(p) === "fulfilled" ? (Bun.peek(p) as Blob) : p;
}

function filePath(v: string | { path: string } | undefined, what: string): string {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof v.path === "string") return v.path;
  throw new TypeError(`h3q: serve() needs ${what} as a PEM file path or Bun.file(path)`);
}

/** Writes a self-signed ECDSA certificate and key (PEM) for host, valid
 * for days days; for tests and local development. */
export function generateSelfSignedCert(certPath: string, keyPath: string, host = "localhost", days = 14): void {
  const L = lib();
  const rc = L.h3q_generate_self_signed_cert(cstr(certPath), cstr(keyPath), cstr(host), days);
  if (rc !== 0) throw new Error(`h3q: cannot generate a certificate: ${L.h3q_strerror(rc)}`);
}

// --------------------------------------------------------------- routes

interface CompiledRoute {
  segments: string[];
  wildcard: boolean;
  value: RouteValue;
}

function compileRoutes(routes: Record<string, RouteValue> | undefined) {
  const exact = new Map<string, RouteValue>();
  const patterns: CompiledRoute[] = [];
  for (const [path, value] of Object.entries(routes ?? {})) {
    if (!path.includes(":") && !path.endsWith("*")) {
      exact.set(path, value);
      continue;
    }
    const wildcard = path.endsWith("/*");
    const segments = (wildcard ? path.slice(0, -2) : path).split("/");
    patterns.push({ segments, wildcard, value });
  }
  // Literal segments before parameters, longer before wildcards.
  patterns.sort((a, b) => Number(a.wildcard) - Number(b.wildcard) || b.segments.length - a.segments.length);
  return (path: string): [RouteValue, Record<string, string>] | null => {
    const hit = exact.get(path);
    if (hit !== undefined) return [hit, {}];
    const parts = path.split("/");
    for (const r of patterns) {
      if (r.wildcard ? parts.length < r.segments.length : parts.length !== r.segments.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < r.segments.length && ok; i++) {
        const seg = r.segments[i];
        if (seg.startsWith(":")) {
          if (parts[i] === "") ok = false;
          else params[seg.slice(1)] = decodeURIComponent(parts[i]);
        } else ok = seg === parts[i];
      }
      if (ok) return [r.value, params];
    }
    return null;
  };
}

function pickHandler(value: RouteValue, method: string): Handler | Response | null {
  if (typeof value === "function" || value instanceof Response) return value;
  const m = value[method] ?? (method === "HEAD" ? value.GET : undefined);
  return m ?? null;
}

// -------------------------------------------------------------- streams

/** JS state of one HTTP/3 request stream. */
class Stream {
  closed = false;
  closeCode = 0;
  body: ReadableStreamDefaultController<Uint8Array> | null = null;
  bodyQueued = 0; // request bytes enqueued and not yet credited
  trailers: ((h: Headers) => void) | null = null;
  inflight = 0; // response bytes written and not yet taken by the stream
  waiter: (() => void) | null = null;
  constructor(
    readonly id: number,
    readonly conn = 0, // the connection's number
  ) {}

  wake(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }
}

// ---------------------------------------------------------------- serve

const STATS_FIELDS = [
  "connections_accepted", "connections_active", "requests", "udp_datagrams_received",
  "udp_datagrams_sent", "packets_dropped", "datagrams_received", "datagrams_sent",
  "datagrams_send_dropped", "datagrams_recv_dropped", "datagrams_too_large",
  "datagrams_unroutable", "wt_sessions_accepted", "wt_sessions_rejected",
  "wt_sessions_active", "wt_streams_opened", "wt_streams_rejected",
];

function makeConfig(L: H3qLib, o: ServeOptions): number {
  const cfg = L.h3q_config_new();
  if (!cfg) throw new Error("h3q: out of memory");
  const fields: Record<string, string | number | boolean> = {
    bind_addr: o.hostname ?? "0.0.0.0",
    port: o.port ?? 0,
    cert_path: filePath(o.cert, "cert"),
    key_path: filePath(o.key, "key"),
    ...(o.maxRequestBodySize !== undefined && { max_request_body_size: o.maxRequestBodySize }),
    ...(o.idleTimeoutMs !== undefined && { idle_timeout_ms: o.idleTimeoutMs }),
    ...(o.maxConnections !== undefined && { max_connections: o.maxConnections }),
    ...(o.webtransport && { enable_webtransport: true }),
    ...o.config,
  };
  for (const [name, value] of Object.entries(fields)) {
    const rc = L.h3q_config_set(cfg, cstr(name), cstr(String(value)));
    if (rc !== 0) {
      L.h3q_config_free(cfg);
      throw new Error(`h3q: config ${name}=${value}: ${L.h3q_strerror(rc)}`);
    }
  }
  return cfg as number;
}

/** Starts an HTTP/3 server. Throws when the library is missing or the
 * configuration is refused (the message names the field). */
export function serve(options: ServeOptions): Server {
  if (!options.fetch && !options.routes && !options.files && !options.webtransport) {
    throw new TypeError("h3q: serve() needs fetch, routes or files");
  }
  return serveOn(options, options.port ?? 0);
}

function serveOn(options: ServeOptions, port: number): Server {
  const L = lib();
  const cfg = makeConfig(L, { ...options, port });
  const out = new BigUint64Array(1);
  const err = new Uint8Array(256);
  const rc = L.h3q_host_new(cfg, options.bodyWindow ?? 0, options.maxEvents ?? 0, out, err, err.length);
  L.h3q_config_free(cfg);
  if (rc !== 0) {
    const msg = decoder.decode(err.subarray(0, err.indexOf(0)));
    throw new Error(`h3q: cannot start server: ${msg || L.h3q_strerror(rc)}`);
  }
  const host = Number(out[0]);
  let statics: number[];
  try {
    statics = addFileRoutes(L, host, options.files ?? {});
    for (const pattern of Object.keys(options.webtransport ?? {})) {
      const rc = L.h3q_host_webtransport(host, cstr(pattern));
      if (rc !== 0) throw new Error(`h3q: webtransport ${pattern}: ${L.h3q_strerror(rc)}`);
    }
  } catch (e) {
    L.h3q_host_free(host);
    throw e;
  }
  return new HostServer(L, host, options, statics);
}

// Registers h3q's static file handler under each prefix; returns the
// handler objects to free after the server.
function addFileRoutes(L: H3qLib, host: number, files: Record<string, string>): number[] {
  const made: number[] = [];
  const srv = L.h3q_host_server(host);
  const handler = (L.h3q_static_handler as unknown as { ptr: number }).ptr;
  try {
    for (const [prefix, dirPath] of Object.entries(files)) {
      const err = new Int32Array(1);
      const st = L.h3q_static_new(cstr(dirPath), null, err);
      if (!st) throw new Error(`h3q: files ${prefix}: ${dirPath}: ${L.h3q_strerror(err[0])}`);
      made.push(st as number);
      const pattern = (prefix.endsWith("/") ? prefix : prefix + "/") + "*";
      const rc = L.h3q_server_route(srv, cstr("GET"), cstr(pattern), handler, st);
      if (rc !== 0) throw new Error(`h3q: files ${prefix}: ${L.h3q_strerror(rc)}`);
    }
    return made;
  } catch (e) {
    for (const st of made) L.h3q_static_free(st);
    throw e;
  }
}

/** JS state of one WebTransport session. */
class WtState {
  readable: ReadableStreamDefaultController<Uint8Array> | null = null;
  incomingBidi: ReadableStreamDefaultController<WebTransportBidirectionalStream> | null = null;
  incomingUni: ReadableStreamDefaultController<ReadableStream<Uint8Array>> | null = null;
  resolveClosed!: (info: WebTransportCloseInfo) => void;
  closed = false;
  constructor(readonly id: number) {}
}

class HostServer implements Server {
  readonly port: number;
  readonly hostname: string;
  private streams = new Map<number, Stream>();
  private sessions = new Map<number, WtState>();
  // WebTransport streams we asked for and the library has not opened yet.
  private opening = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private wtRoute: ReturnType<typeof compileRoutes>;
  private route: ReturnType<typeof compileRoutes>;
  private notify: JSCallback;
  private keepAlive: ReturnType<typeof setInterval>;
  private stopped: Promise<void>;
  private resolveStopped!: () => void;
  private draining = false;
  private freed = false;
  private writeWindow: number;
  private bodyHighWater: number;
  private freeData: number;
  // Where h3q_host_poll_into puts a batch: records, and the bytes of the
  // events that are not handed over as buffers of their own.
  private records = new Uint32Array(MAX_RECORDS * RECORD_WORDS);
  private signedRecords = new Int32Array(this.records.buffer);
  private eventBytes = new Uint8Array(EVENT_BYTES);
  private corked = false;
  private drainLater = () => this.drain();
  private inline: boolean; // the loop runs on this thread (ServeOptions.loop)
  private runConn = -1; // the connection of the last answers, and their count
  private runLength = 0;
  private uncork = () => {
    this.corked = false;
    if (this.freed) return;
    if (!this.inline) {
      this.L.h3q_host_cork(this.host, false);
      return;
    }
    // Inline, the held commands run (and the answers leave) in a pump.
    // Events it brings are handled in a macrotask of their own, so that
    // a steady load cannot keep timers and I/O waiting behind microtasks.
    // (An error comes with the STOPPED event queued: drain takes it too.)
    const waiting = this.L.h3q_host_pump(this.host);
    if (waiting !== 0) setImmediate(this.drainLater);
    else if (!this.freed) this.L.h3q_host_arm(this.host);
  };

  constructor(
    private L: H3qLib,
    private host: number,
    private o: ServeOptions,
    private statics: number[] = [],
  ) {
    this.port = L.h3q_host_port(host);
    this.hostname = o.hostname ?? "0.0.0.0";
    this.route = compileRoutes(o.routes);
    this.wtRoute = compileRoutes(o.webtransport);
    this.inline = loopMode(o) === "inline";
    this.writeWindow = o.writeWindow ?? 1 << 20;
    this.bodyHighWater = 64 * 1024;
    this.freeData = (L.h3q_host_data_free as unknown as { ptr: number }).ptr;
    if (Number(L.h3q_host_record_size()) !== RECORD_SIZE) {
      throw new Error("h3q: libh3q.so does not match this package (event record size); rebuild it");
    }
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    // Runs on the JS thread, queued by the loop thread; carries no data.
    this.notify = new JSCallback(() => this.drain(), { args: [], returns: "void", threadsafe: true });
    // The threadsafe callback alone does not keep the process alive.
    this.keepAlive = setInterval(() => {}, 1 << 30);
    const rc = this.inline ? L.h3q_host_start_inline(host, this.notify.ptr) : L.h3q_host_start(host, this.notify.ptr);
    if (rc !== 0) {
      this.release();
      throw new Error(`h3q: cannot start the server thread: ${L.h3q_strerror(rc)}`);
    }
  }

  get url(): URL {
    return new URL(`https://${this.hostname === "0.0.0.0" ? "127.0.0.1" : this.hostname}:${this.port}/`);
  }

  get pendingRequests(): number {
    return this.streams.size;
  }

  stop(graceful = true): Promise<void> {
    if (!this.freed && !this.draining) {
      this.draining = true;
      this.L.h3q_host_stop(this.host, graceful);
      // Inline, the stop proceeds in pumps: start them.
      if (this.inline) setImmediate(this.drainLater);
    }
    return this.stopped;
  }

  stats(): Record<string, number> {
    const buf = new BigUint64Array(32); // larger than the struct, for newer libraries
    if (!this.freed)
      this.L.h3q_server_get_stats(this.L.h3q_host_server(this.host), buf, buf.byteLength);
    const out: Record<string, number> = {};
    STATS_FIELDS.forEach((name, i) => (out[name] = Number(buf[i])));
    return out;
  }

  private release(): void {
    if (this.freed) return;
    this.freed = true;
    clearInterval(this.keepAlive);
    this.L.h3q_host_free(this.host);
    for (const st of this.statics) this.L.h3q_static_free(st);
    // The loop thread is joined, so nothing calls notify any more, but a
    // call it made just before may still wait in Bun's task queue: close
    // the callback only after that has run (drain sees freed and returns).
    const notify = this.notify;
    setTimeout(() => notify.close(), 50);
    this.resolveStopped();
  }

  // Holds commands back until the microtasks queued so far have run: the
  // loop thread then wakes once for all of them instead of (on a shared
  // core) preempting this thread at the first one.
  private hold(): void {
    if (this.corked || this.freed) return;
    this.corked = true;
    if (!this.inline) this.L.h3q_host_cork(this.host, true);
    queueMicrotask(this.uncork);
  }

  // The library, for a command: holds the loop thread's wakeup back first.
  private cmd(): H3qLib {
    this.hold();
    return this.L;
  }

  // Drains the event queue until a poll returns 0 (which re-arms notify).
  private drain(): void {
    // Bounded per turn so that promises and timers run in between; a
    // batch left over continues in a later macrotask.
    for (let round = 0; round < 64 && !this.freed; round++) {
      // Inline: receive and send first; commands held in this turn run at
      // the uncork's pump. Threaded: hold the loop thread's wakeup.
      if (this.inline) this.L.h3q_host_pump(this.host);
      else this.hold();
      const n = Number(
        this.L.h3q_host_poll_into(this.host, this.records, MAX_RECORDS, this.eventBytes, EVENT_BYTES),
      );
      if (n === 0) {
        // Idle until the watcher sees a datagram or a timer.
        if (this.inline && !this.freed) this.L.h3q_host_arm(this.host);
        return;
      }
      if (this.inline) this.hold();
      for (let i = 0; i < n && !this.freed; i++) {
        try {
          this.dispatch(i * RECORD_WORDS);
        } catch (e) {
          // A bug here must not take the server (or the process) down.
          console.error("h3q: event handling failed:", e);
        }
      }
    }
    if (!this.freed) setImmediate(() => this.drain());
  }

  private dispatch(r: number): void {
    const w = this.records;
    const type = w[r];
    const id = w[r + 1];
    switch (type) {
      case EVENT.REQUEST:
        // value: bit 0 no body, above it the connection's number.
        this.onRequest(id, this.text(r), (w[r + 2] & 1) === 1, Math.floor(this.value(r) / 2));
        break;
      case EVENT.BODY:
        this.onBody(id, this.owned(r), w[r + 8]);
        break;
      case EVENT.BODY_END:
        this.onBodyEnd(id, r);
        break;
      case EVENT.WRITTEN: {
        const st = this.streams.get(id);
        if (st) {
          st.inflight -= this.value(r);
          if (st.inflight <= this.writeWindow / 2) st.wake();
        }
        break;
      }
      case EVENT.CLOSED:
        this.onClosed(id, this.value(r));
        break;
      case EVENT.WT_SESSION:
        this.onSession(id, this.text(r));
        break;
      case EVENT.WT_DATAGRAM: {
        const ws = this.sessions.get(id);
        const data = this.bytes(r);
        if (ws?.readable && (ws.readable.desiredSize ?? 0) > 0) ws.readable.enqueue(data);
        // else dropped, as datagrams may be
        break;
      }
      case EVENT.WT_CLOSED:
        this.onSessionClosed(id, this.value(r), this.text(r));
        break;
      case EVENT.WT_STREAM:
        this.onWtStream(id, this.value(r));
        break;
      case EVENT.STOPPED:
        for (const st of this.streams.values()) this.onClosed(st.id, 0x102);
        for (const ws of this.sessions.values()) this.onSessionClosed(ws.id, 0, "");
        this.release();
        break;
    }
  }

  // The record's value (i64; the codes and counts it carries fit a double).
  private value(r: number): number {
    return this.signedRecords[r + 3] * 0x100000000 + this.records[r + 2];
  }

  // The record's handed-over buffer (0 when its bytes are in eventBytes).
  private owned(r: number): number {
    return this.records[r + 5] * 0x100000000 + this.records[r + 4];
  }

  // A copy of the record's bytes, wherever they are.
  private bytes(r: number): Uint8Array {
    const len = this.records[r + 8];
    if (len === 0) return EMPTY;
    const p = this.owned(r);
    if (p === 0) return this.eventBytes.slice(this.records[r + 6], this.records[r + 6] + len);
    return new Uint8Array(toArrayBuffer(p as never, 0, len, p as never, this.freeData as never));
  }

  private text(r: number): string {
    const len = this.records[r + 8];
    if (len === 0) return "";
    const p = this.owned(r);
    if (p !== 0) return decoder.decode(this.bytes(r));
    const off = this.records[r + 6];
    return decoder.decode(this.eventBytes.subarray(off, off + len));
  }

  private onRequest(id: number, head: string, noBody: boolean, conn: number): void {
    const parts = head.split("\0");
    const [method, path, query, authority, scheme] = parts;
    const st = new Stream(id, conn);
    this.streams.set(id, st);
    const url = `${scheme || "https"}://${authority}${path}${query ? "?" + query : ""}`;
    let req: H3qRequest;
    try {
      req = (
        method === "GET" && noBody ? new Request(url) : new Request(url, this.requestInit(st, method, noBody))
      ) as H3qRequest;
      appendFields(req.headers, parts, 5);
    } catch {
      this.cmd().h3q_host_respond(this.host, id, 400, null, 0, null, 0, END);
      return;
    }
    if (!noBody) {
      requestTrailerMap.set(req, new Promise((r) => (st.trailers = r)));
    }
    this.handle(st, req, path);
  }

  // The method and body; the fields are appended once the Request exists.
  private requestInit(st: Stream, method: string, noBody: boolean) {
    const init: RequestInit & { duplex?: string } = { method };
    if (!noBody && method !== "GET" && method !== "HEAD") {
      init.body = this.requestBody(st);
      init.duplex = "half";
    }
    return init;
  }

  private requestBody(st: Stream): ReadableStream<Uint8Array> {
    // H3_REQUEST_CANCELLED when the handler cancels the body.
    return this.bodyStream(st, () => this.cmd().h3q_host_reset(this.host, st.id, 0x10c));
  }

  // Bytes of a stream (a request body, a WebTransport stream) as they come.
  private bodyStream(st: Stream, onCancel: (reason: unknown) => void): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          st.body = c;
        },
        // Room in the JS queue: give the bytes the reader took back to the
        // library as credit, which resumes a paused stream.
        pull: (c) => {
          const queued = Math.max(0, this.bodyHighWater - (c.desiredSize ?? 0));
          const taken = st.bodyQueued - queued;
          if (taken > 0 && !st.closed) {
            st.bodyQueued -= taken;
            this.cmd().h3q_host_consume(this.host, st.id, taken);
          }
        },
        cancel: (reason) => {
          st.body = null;
          if (!st.closed && !this.freed) onCancel(reason);
        },
      },
      { highWaterMark: this.bodyHighWater, size: (chunk) => chunk.byteLength },
    );
  }

  private onBody(id: number, data: number, len: number): void {
    const st = this.streams.get(id);
    // The chunk's memory becomes the ArrayBuffer's (freed by its finalizer).
    if (!st?.body) {
      this.L.h3q_host_data_free(data, null);
      return;
    }
    const chunk = new Uint8Array(toArrayBuffer(data as never, 0, len, data as never, this.freeData as never));
    st.bodyQueued += len;
    try {
      st.body.enqueue(chunk);
    } catch {
      st.body = null;
    }
    // A reader that keeps up is pulled again at once; credit now.
    if (st.body && (st.body.desiredSize ?? 0) > 0) {
      const queued = this.bodyHighWater - (st.body.desiredSize ?? 0);
      const taken = st.bodyQueued - queued;
      if (taken > 0) {
        st.bodyQueued -= taken;
        this.cmd().h3q_host_consume(this.host, st.id, taken);
      }
    }
  }

  private onBodyEnd(id: number, r: number): void {
    const st = this.streams.get(id);
    if (!st) return;
    const code = this.value(r);
    if (code >= WT_CODE) {
      // The client reset its side of a WebTransport stream.
      try {
        st.body?.error(wtStreamError(code));
      } catch {}
      st.body = null;
      return;
    }
    const parts = this.text(r).split("\0");
    st.trailers?.(new Headers(parseFields(parts, 0)));
    st.trailers = null;
    try {
      st.body?.close();
    } catch {}
    st.body = null;
  }

  private onClosed(id: number, code: number): void {
    const opening = this.opening.get(id);
    if (opening) {
      this.opening.delete(id);
      const why = code < 0 ? this.L.h3q_strerror(code) : "closed";
      opening.reject(new Error(`h3q: cannot open a WebTransport stream: ${why}`));
    }
    const st = this.streams.get(id);
    if (!st) return;
    this.streams.delete(id);
    st.closed = true;
    st.closeCode = code;
    if (st.body && code !== 0) {
      const e = code >= WT_CODE ? wtStreamError(code) : new Error(`h3q: stream reset (0x${code.toString(16)})`);
      try {
        st.body.error(e);
      } catch {}
    }
    st.body = null;
    st.trailers?.(new Headers());
    st.wake();
  }

  // ------------------------------------------------------- webtransport

  private onSession(id: number, head: string): void {
    const parts = head.split("\0");
    const [, path, query, authority, scheme] = parts;
    const w = new WtState(id);
    this.sessions.set(id, w);
    const url = `${scheme || "https"}://${authority}${path}${query ? "?" + query : ""}`;
    const request = new Request(url, { method: "CONNECT", headers: parseFields(parts, 5) }) as H3qRequest;
    const hit = this.wtRoute(path);
    request.params = hit ? hit[1] : {};
    const host = this.host;
    const closeSession = (info?: WebTransportCloseInfo) => {
      if (w.closed || this.freed) return;
      const reason = encoder.encode(info?.reason ?? "");
      this.cmd().h3q_host_wt_close(host, id, (info?.closeCode ?? 0) >>> 0, reason, Math.min(reason.length, 1024));
    };
    const session: WebTransportSession = {
      request,
      incomingBidirectionalStreams: new ReadableStream<WebTransportBidirectionalStream>({
        start: (c) => void (w.incomingBidi = c),
      }),
      incomingUnidirectionalStreams: new ReadableStream<ReadableStream<Uint8Array>>({
        start: (c) => void (w.incomingUni = c),
      }),
      createBidirectionalStream: () =>
        this.openWtStream(w, true, (st) => ({ readable: this.wtReadable(st), writable: this.wtWritable(st) })),
      createUnidirectionalStream: () => this.openWtStream(w, false, (st) => this.wtWritable(st)),
      datagrams: {
        readable: new ReadableStream<Uint8Array>(
          { start: (c) => void (w.readable = c) },
          { highWaterMark: 256 }, // datagrams beyond this wait nowhere: dropped
        ),
        writable: new WritableStream<Uint8Array>({
          write: (chunk) => {
            if (w.closed || this.freed) throw new Error("h3q: WebTransport session closed");
            const b = toBytes(chunk);
            this.cmd().h3q_host_wt_send_datagram(host, id, b, b.length);
          },
        }),
      },
      closed: new Promise((r) => (w.resolveClosed = r)),
      close: closeSession,
    };
    const handler = hit?.[0] as WebTransportHandler | undefined;
    if (!handler) return closeSession({ closeCode: 0, reason: "no handler" });
    try {
      Promise.resolve(handler(session)).catch((e) => {
        console.error("h3q: WebTransport handler failed:", e);
        closeSession({ closeCode: 1, reason: "handler failed" });
      });
    } catch (e) {
      console.error("h3q: WebTransport handler failed:", e);
      closeSession({ closeCode: 1, reason: "handler failed" });
    }
  }

  private onSessionClosed(id: number, code: number, reason: string): void {
    const w = this.sessions.get(id);
    if (!w) return;
    this.sessions.delete(id);
    w.closed = true;
    for (const c of [w.readable, w.incomingBidi, w.incomingUni]) {
      try {
        c?.close();
      } catch {}
    }
    w.readable = w.incomingBidi = w.incomingUni = null;
    w.resolveClosed({ closeCode: code, reason });
  }

  // A stream of a session: one the client opened (given to the session's
  // incoming streams), or one of ours now open.
  private onWtStream(id: number, value: number): void {
    const opening = this.opening.get(id);
    if (opening) {
      this.opening.delete(id);
      opening.resolve();
      return;
    }
    const bidi = value >= WT_CODE;
    const w = this.sessions.get(bidi ? value - WT_CODE : value);
    const incoming = bidi ? w?.incomingBidi : w?.incomingUni;
    if (!incoming) {
      // The session is ending: refuse the stream.
      this.cmd().h3q_host_wt_stop(this.host, id, 0);
      this.cmd().h3q_host_reset(this.host, id, 0);
      return;
    }
    const st = new Stream(id);
    this.streams.set(id, st);
    const readable = this.wtReadable(st);
    try {
      if (bidi) w!.incomingBidi!.enqueue({ readable, writable: this.wtWritable(st) });
      else w!.incomingUni!.enqueue(readable);
    } catch {
      // The handler cancelled the session's incoming streams: refuse it.
      this.cmd().h3q_host_wt_stop(this.host, id, 0);
      if (bidi) this.cmd().h3q_host_reset(this.host, id, 0);
    }
  }

  // Asks for a stream of ours; its JS sides are made at once (make), so
  // that no byte of the client's finds the stream without a reader.
  private openWtStream<T>(w: WtState, bidi: boolean, make: (st: Stream) => T): Promise<T> {
    if (w.closed || this.freed) return Promise.reject(new Error("h3q: WebTransport session closed"));
    const out = new Uint32Array(1);
    const rc = this.cmd().h3q_host_wt_open_stream(this.host, w.id, bidi, out);
    if (rc !== 0) return Promise.reject(new Error(`h3q: cannot open a WebTransport stream: ${this.L.h3q_strerror(rc)}`));
    const st = new Stream(out[0]);
    this.streams.set(st.id, st);
    const sides = make(st);
    return new Promise((resolve, reject) => this.opening.set(st.id, { resolve: () => resolve(sides), reject }));
  }

  private wtReadable(st: Stream): ReadableStream<Uint8Array> {
    return this.bodyStream(st, (reason) => this.cmd().h3q_host_wt_stop(this.host, st.id, streamErrorCode(reason)));
  }

  // The sending side of a WebTransport stream: a write waits while more
  // than writeWindow bytes are queued in the library.
  private wtWritable(st: Stream): WritableStream<Uint8Array> {
    const gone = () => st.closed || this.freed;
    return new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (gone()) throw new Error("h3q: WebTransport stream closed");
        const b = toBytes(chunk);
        if (b.length) {
          this.cmd().h3q_host_write(this.host, st.id, b, b.length, 0);
          st.inflight += b.length;
        }
        if (st.inflight > this.writeWindow) await new Promise<void>((wake) => (st.waiter = wake));
      },
      close: () => {
        if (!gone()) this.cmd().h3q_host_write(this.host, st.id, null, 0, END);
      },
      abort: (reason) => {
        if (!gone()) this.cmd().h3q_host_reset(this.host, st.id, streamErrorCode(reason));
      },
    });
  }

  // ------------------------------------------------------------ handler

  private handle(st: Stream, req: H3qRequest, path: string): void {
    let result: MaybePromise<Response>;
    try {
      result = this.callHandler(req, path);
    } catch (e) {
      this.fail(st, e);
      return;
    }
    if (result instanceof Response) {
      this.send(st, result);
      return;
    }
    const settled = Bun.peek(result);
    if (settled instanceof Response) {
      this.send(st, settled);
      return;
    }
    Promise.resolve(result).then(
      (res) => this.send(st, res),
      (e) => this.fail(st, e),
    );
  }

  private callHandler(req: H3qRequest, path: string): MaybePromise<Response> {
    const hit = this.route(path);
    if (hit) {
      const h = pickHandler(hit[0], req.method);
      if (!h) return new Response(null, { status: 405 });
      req.params = hit[1];
      return h instanceof Response ? h.clone() : h(req, this);
    }
    req.params = {};
    if (this.o.fetch) return this.o.fetch(req, this);
    return new Response(null, { status: 404 });
  }

  private fail(st: Stream, e: unknown): void {
    if (!this.o.error) {
      console.error("h3q: handler failed:", e);
      this.sendStatus(st, 500);
      return;
    }
    try {
      Promise.resolve(this.o.error(e)).then(
        (r) => this.send(st, r),
        () => this.sendStatus(st, 500),
      );
    } catch {
      this.sendStatus(st, 500);
    }
  }

  private sendStatus(st: Stream, status: number): void {
    if (!st.closed && !this.freed) this.cmd().h3q_host_respond(this.host, st.id, status, null, 0, null, 0, END);
  }

  private send(st: Stream, res: unknown): void {
    if (!(res instanceof Response)) {
      this.fail(st, new TypeError("h3q: the handler did not return a Response"));
      return;
    }
    if (st.closed || this.freed) return;
    const onError = (e: unknown) => {
      if (!st.closed && !this.freed) {
        console.error("h3q: response body failed:", e);
        this.cmd().h3q_host_reset(this.host, st.id, 0x102);
      }
    };
    try {
      this.sendResponse(st, res)?.catch(onError);
    } catch (e) {
      onError(e);
    }
    this.answered(st);
  }

  // Counts answers to one connection in a row (see EARLY_FLUSH).
  private answered(st: Stream): void {
    if (st.conn !== this.runConn) {
      this.runConn = st.conn;
      this.runLength = 1;
    } else if (++this.runLength >= EARLY_FLUSH && !this.freed) {
      this.runLength = 0;
      this.L.h3q_host_flush(this.host);
    }
  }

  // Synchronous as long as the body's reads are (strings, buffers): most
  // responses leave without a trip through the microtask queue.
  private sendResponse(st: Stream, res: Response): Promise<void> | void {
    const head = headersBlob(res.headers);
    const type = lastContentType;
    const trailers = anyTrailers ? responseTrailers.get(res) : undefined;
    const body = res.body;
    if (!body) return this.sendEmpty(st, res.status, head, trailers);
    const blob = trailers === undefined ? ownBlob(res, body, type) : null;
    if (blob instanceof Promise) return blob.then((b) => this.sendBlob(st, res.status, head, b));
    if (blob) return this.sendBlob(st, res.status, head, blob);
    const reader = body.getReader();
    // Bun reports its own streams (bodies made from strings, buffers and
    // Blobs) as used as soon as a reader is attached, and a caller's own
    // ReadableStream only once it is read from: for Bun's, the end of the
    // body follows its last chunk within a microtask.
    return this.sendStream(st, res.status, head, trailers, reader, res.bodyUsed);
  }

  // A body that is a Blob of Bun's: a file goes to libh3q, which opens it
  // and sends it from the loop thread (no JavaScript per chunk); bytes in
  // memory leave as one command.
  private sendBlob(st: Stream, status: number, head: Uint8Array, blob: Blob): Promise<void> | void {
    if (st.closed || this.freed) return;
    const path = (blob as Blob & { name?: unknown }).name;
    if (typeof path === "string" && path !== "" && !("presign" in blob)) {
      // blob.size is the whole file's size unless the Blob is a slice,
      // which then fails the size check and is read by Bun below.
      const rc = this.cmd().h3q_host_respond_file(this.host, st.id, status, head, head.length, cstrCached(path), blob.size);
      if (rc === 0 || rc === ERR.STATE) return;
      if (rc === ERR.NOTFOUND) return this.sendStatus(st, 404);
      if (rc === ERR.FORBIDDEN) return this.sendStatus(st, 403);
      if (rc !== ERR.INVAL) return this.sendStatus(st, 500);
      return this.sendStream(st, status, head, undefined, blob.stream().getReader(), true);
    }
    // In memory, the bytes are there at once (a Bun.file(fd) is read whole).
    const p = blob.bytes();
    const send = (bytes: Uint8Array) => {
      if (!st.closed && !this.freed)
        this.cmd().h3q_host_respond(this.host, st.id, status, head, head.length, bytes, bytes.length, END);
    };
    if (Bun.peek.status(p) === "fulfilled") return send(Bun.peek(p) as Uint8Array);
    return p.then(send);
  }

  // Sends a body read through reader; ownStream: one of Bun's own streams.
  private sendStream(
    st: Stream,
    status: number,
    head: Uint8Array,
    trailers: TrailerSource | undefined,
    reader: ReadableStreamDefaultReader<unknown>,
    ownStream: boolean,
  ): Promise<void> | void {
    const p = reader.read();
    // A read that failed at once takes the promise path too: its error
    // reaches send's handler as it is.
    if (Bun.peek.status(p) !== "fulfilled")
      return p.then((r) => this.sendFirst(st, status, head, trailers, reader, r, ownStream));
    const first = Bun.peek(p) as ReadableStreamReadResult<unknown>;
    return this.sendFirst(st, status, head, trailers, reader, first, ownStream);
  }

  private sendEmpty(st: Stream, status: number, head: Uint8Array, trailers: TrailerSource | undefined) {
    if (trailers === undefined) {
      this.cmd().h3q_host_respond(this.host, st.id, status, head, head.length, null, 0, END);
      return;
    }
    this.cmd().h3q_host_respond(this.host, st.id, status, head, head.length, null, 0, 0);
    return this.sendTrailers(st, trailers);
  }

  private sendFirst(
    st: Stream,
    status: number,
    head: Uint8Array,
    trailers: TrailerSource | undefined,
    reader: ReadableStreamDefaultReader<unknown>,
    first: ReadableStreamReadResult<unknown>,
    ownStream: boolean,
  ): Promise<void> | void {
    if (st.closed || this.freed) {
      reader.cancel().catch(() => {});
      return;
    }
    if (first.done) return this.sendEmpty(st, status, head, trailers);
    const chunk = toBytes(first.value);
    if (chunk.length > SMALL_BODY || trailers !== undefined) {
      this.start(st, status, head, chunk);
      return reader.read().then((r) => this.pump(st, reader, r, trailers));
    }
    // A small first chunk may be the whole body: if the next read says so
    // at once, the response leaves as one command with its header section
    // and end.
    const next = reader.read();
    if (Bun.peek.status(next) === "fulfilled")
      return this.sendRest(st, status, head, chunk, reader, Bun.peek(next) as ReadableStreamReadResult<unknown>);
    if (!ownStream) {
      // A stream of the handler's may take its time: send what is there.
      this.start(st, status, head, chunk);
      return next.then((r) => this.pump(st, reader, r, undefined));
    }
    // Bun's own stream ends within a microtask: wait for it. Streams may
    // reuse a chunk's memory for the next read, hence the copy.
    const held = chunk.slice();
    return next.then((r) => this.sendRest(st, status, head, held, reader, r));
  }

  // The response's header section and first body chunk, not the end.
  private start(st: Stream, status: number, head: Uint8Array, chunk: Uint8Array): void {
    this.cmd().h3q_host_respond(this.host, st.id, status, head, head.length, chunk, chunk.length, 0);
    st.inflight += chunk.length;
  }

  // Sends the first chunk, with the end when r (the next read) is done.
  private sendRest(
    st: Stream,
    status: number,
    head: Uint8Array,
    chunk: Uint8Array,
    reader: ReadableStreamDefaultReader<unknown>,
    r: ReadableStreamReadResult<unknown>,
  ): Promise<void> | void {
    if (st.closed || this.freed) {
      if (!r.done) reader.cancel().catch(() => {});
      return;
    }
    if (r.done) {
      this.cmd().h3q_host_respond(this.host, st.id, status, head, head.length, chunk, chunk.length, END);
      return;
    }
    this.start(st, status, head, chunk);
    return this.pump(st, reader, r, undefined);
  }

  // Writes the rest of a body, waiting whenever more than writeWindow
  // bytes are queued in the library (WRITTEN events bring it down).
  private async pump(
    st: Stream,
    reader: ReadableStreamDefaultReader<unknown>,
    r: ReadableStreamReadResult<unknown>,
    trailers: TrailerSource | undefined,
  ): Promise<void> {
    const L = this.L;
    let chunk: Uint8Array;
    // Bounded by the body: every round consumes one chunk.
    while (!r.done) {
      if (st.closed || this.freed) {
        await reader.cancel().catch(() => {});
        return;
      }
      chunk = toBytes(r.value);
      if (chunk.length) {
        this.cmd().h3q_host_write(this.host, st.id, chunk, chunk.length, 0);
        st.inflight += chunk.length;
      }
      if (st.inflight > this.writeWindow) await new Promise<void>((w) => (st.waiter = w));
      r = await reader.read();
    }
    if (st.closed || this.freed) return;
    if (trailers === undefined) this.cmd().h3q_host_write(this.host, st.id, null, 0, END);
    else await this.sendTrailers(st, trailers);
  }

  private async sendTrailers(st: Stream, source: TrailerSource): Promise<void> {
    const init = typeof source === "function" ? await source() : source;
    if (st.closed || this.freed) return;
    const blob = fieldsBlob(new Headers(init) as unknown as Iterable<[string, string]>);
    if (blob.length === 0) this.cmd().h3q_host_write(this.host, st.id, null, 0, END);
    else this.cmd().h3q_host_trailers(this.host, st.id, blob, blob.length);
  }
}
