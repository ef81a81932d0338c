// Loads one page in Debian's chromium (through playwright-core, never a
// downloaded browser) and prints one JSON line describing what happened:
// every request's status and protocol (from the DevTools protocol), the
// performance entries (nextHopProtocol), failed requests, console errors,
// what the page's own checks returned (window.h3qChecks, if the page defines
// it) and some DOM text. The caller (tests/integration/test_chromium.py)
// decides what is right; this script only observes.
//
//   node load_page.mjs '<json options>'
// options: executablePath, url, args (chromium flags), timeoutMs,
//          selectors (CSS selectors whose textContent is reported),
//          styles ([selector, property] pairs whose computed value is reported)
//
// Exit status: 0 when a report was printed (even if the page failed to
// load), 2 on bad options, 3 when the whole run hit timeoutMs. The script
// always ends by itself: a watchdog exits after timeoutMs.
import { chromium } from "playwright-core";

const opts = JSON.parse(process.argv[2] || "{}");
if (!opts.executablePath || !opts.url || !opts.timeoutMs) {
  console.error("usage: node load_page.mjs '{\"executablePath\":..,\"url\":..,\"timeoutMs\":..}'");
  process.exit(2);
}

const report = {
  url: opts.url,
  ok: false,
  error: null,
  browserVersion: null,
  navigation: null, // {status, url}
  responses: [], // from CDP Network.responseReceived: {url, status, protocol, type}
  failed: [], // {url, errorText}
  console: [], // console errors and page errors: {text, url}
  entries: [], // performance.getEntries() (navigation + resource)
  checks: null, // what window.h3qChecks resolved to
  text: {}, // selector -> textContent
  styles: {}, // "selector|property" -> computed value
};

let browser = null;

function finish(code) {
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(code);
}

// Whatever hangs (launch, navigation, the page's checks, close), the run
// ends here. Playwright kills the browser it launched when this process exits.
const watchdog = setTimeout(() => {
  report.error = `timed out after ${opts.timeoutMs} ms`;
  finish(3);
}, opts.timeoutMs);

// Bounds one step so that a slow step leaves time to report the others.
function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function observe(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.responseReceived", (e) =>
    report.responses.push({
      url: e.response.url,
      status: e.response.status,
      protocol: e.response.protocol,
      type: e.type,
    }),
  );
  cdp.on("Network.loadingFailed", (e) =>
    report.failed.push({ requestId: e.requestId, errorText: e.errorText, type: e.type }),
  );
  page.on("requestfailed", (r) =>
    report.failed.push({ url: r.url(), errorText: r.failure()?.errorText ?? "unknown" }),
  );
  page.on("console", (m) => {
    if (m.type() === "error") report.console.push({ text: m.text(), url: m.location().url });
  });
  page.on("pageerror", (e) => report.console.push({ text: `pageerror: ${e.message}`, url: "" }));
}

async function collect(page) {
  report.entries = await page.evaluate(() =>
    performance
      .getEntries()
      .filter((e) => e.entryType === "navigation" || e.entryType === "resource")
      .map((e) => ({
        name: e.name,
        entryType: e.entryType,
        initiatorType: e.initiatorType,
        nextHopProtocol: e.nextHopProtocol,
        responseStatus: e.responseStatus,
        transferSize: e.transferSize,
        encodedBodySize: e.encodedBodySize,
        decodedBodySize: e.decodedBodySize,
      })),
  );
  for (const sel of opts.selectors || []) {
    report.text[sel] = await page.evaluate((s) => {
      const el = document.querySelector(s);
      return el ? el.textContent : null;
    }, sel);
  }
  for (const [sel, prop] of opts.styles || []) {
    report.styles[`${sel}|${prop}`] = await page.evaluate(
      ([s, p]) => {
        const el = document.querySelector(s);
        return el ? getComputedStyle(el).getPropertyValue(p) : null;
      },
      [sel, prop],
    );
  }
}

async function main() {
  const budget = opts.timeoutMs;
  browser = await within(budget / 2, "browser launch", chromium.launch({
    executablePath: opts.executablePath,
    headless: true,
    chromiumSandbox: false,
    args: opts.args || [],
    timeout: budget / 2,
  }));
  report.browserVersion = browser.version();
  const page = await browser.newPage();
  await observe(page);
  const resp = await page.goto(opts.url, { waitUntil: "load", timeout: budget / 2 });
  report.navigation = resp ? { status: resp.status(), url: resp.url() } : null;
  // The page's own checks (fetches, downloads) run after load; wait for them.
  report.checks = await within(budget / 3, "the page's checks",
    page.evaluate(() => window.h3qChecks ?? null));
  await collect(page);
  report.ok = true;
}

main()
  .catch((e) => {
    report.error = String(e && e.stack ? e.stack : e);
  })
  .then(async () => {
    if (browser) await within(10000, "browser close", browser.close()).catch(() => {});
    clearTimeout(watchdog);
    finish(0);
  });
