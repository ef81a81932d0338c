"use strict";
// A WebTransport echo against h3q-server's /wt/echo: datagrams, one
// bidirectional and one unidirectional stream, then a clean close. The
// result is shown in the page and left in window.h3qChecks (the browser
// test reads it). ?certhash=0 skips serverCertificateHashes (for a
// certificate the browser trusts otherwise).

const DATAGRAMS = 20;
const BIDI_BYTES = 100000;
const UNI_BYTES = 50000;
const WAIT_MS = 5000;

function pattern(n, seed) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) % 256;
  return b;
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function timeout(ms, what) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms));
}

async function readAll(readable) {
  const reader = readable.getReader();
  const parts = [];
  let len = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    len += value.length;
  }
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

async function certHashes() {
  if (new URLSearchParams(location.search).get("certhash") === "0") return undefined;
  const r = await fetch("/wt/cert-hash", { cache: "no-store" });
  if (!r.ok) return undefined;
  const hex = (await r.text()).trim();
  const value = new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
  return [{ algorithm: "sha-256", value }];
}

// Each datagram goes out until its echo comes back (datagrams may be lost).
async function datagramEcho(wt) {
  const writer = wt.datagrams.writable.getWriter();
  const reader = wt.datagrams.readable.getReader();
  const got = new Set();
  for (let i = 0; i < DATAGRAMS; i++) {
    const msg = new TextEncoder().encode(`datagram ${i} ${"x".repeat(i * 10)}`);
    for (let attempt = 0; attempt < 3 && !got.has(i); attempt++) {
      await writer.write(msg);
      try {
        const { value } = await Promise.race([reader.read(), timeout(WAIT_MS / 3, "datagram")]);
        const text = new TextDecoder().decode(value);
        const n = Number(text.split(" ")[1]);
        if (same(value, new TextEncoder().encode(`datagram ${n} ${"x".repeat(n * 10)}`))) got.add(n);
      } catch (e) { /* lost: send again */ }
    }
  }
  writer.releaseLock();
  reader.releaseLock();
  return { sent: DATAGRAMS, echoed: got.size };
}

async function bidiEcho(wt) {
  const sent = pattern(BIDI_BYTES, 7);
  const s = await wt.createBidirectionalStream();
  const writer = s.writable.getWriter();
  const reading = readAll(s.readable);
  await writer.write(sent);
  await writer.close();
  const got = await Promise.race([reading, timeout(WAIT_MS, "bidi echo")]);
  return { length: got.length, same: same(got, sent) };
}

async function uniEcho(wt) {
  const sent = pattern(UNI_BYTES, 3);
  const incoming = wt.incomingUnidirectionalStreams.getReader();
  const s = await wt.createUnidirectionalStream();
  const writer = s.getWriter();
  await writer.write(sent);
  await writer.close();
  const { value } = await Promise.race([incoming.read(), timeout(WAIT_MS, "uni echo")]);
  const got = await Promise.race([readAll(value), timeout(WAIT_MS, "uni echo body")]);
  incoming.releaseLock();
  return { length: got.length, same: same(got, sent) };
}

async function step(fn) {
  try {
    return await fn();
  } catch (e) {
    return { error: String(e) };
  }
}

function show(checks) {
  const ul = document.getElementById("results");
  ul.textContent = "";
  for (const [name, v] of Object.entries(checks)) {
    const li = document.createElement("li");
    li.id = `result-${name}`;
    li.textContent = `${name}: ${JSON.stringify(v)}`;
    ul.appendChild(li);
  }
}

window.h3qChecks = (async () => {
  const checks = {};
  let wt;
  try {
    const hashes = await certHashes();
    checks.certHashes = Boolean(hashes);
    wt = new WebTransport(`https://${location.host}/wt/echo`,
                          hashes ? { serverCertificateHashes: hashes } : {});
    await Promise.race([wt.ready, timeout(WAIT_MS, "session")]);
    checks.ready = true;
  } catch (e) {
    checks.ready = { error: String(e) };
    show(checks);
    return checks;
  }
  checks.datagrams = await step(() => datagramEcho(wt));
  checks.bidi = await step(() => bidiEcho(wt));
  checks.uni = await step(() => uniEcho(wt));
  checks.closed = await step(async () => {
    wt.close({ closeCode: 7, reason: "done" });
    const info = await Promise.race([wt.closed, timeout(WAIT_MS, "close")]);
    return { closeCode: info.closeCode, reason: info.reason };
  });
  show(checks);
  return checks;
})();
