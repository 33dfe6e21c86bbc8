#!/usr/bin/env python3
"""The status page as people see it: drives headless Chromium over the Chrome DevTools Protocol, renders the page
at each width in light and in dark, and prints what it measured as one JSON document; the Swift tests judge it.

Usage: page_inspector.py URL OUTDIR [--widths 1400,390] [--schemes light,dark] [--chromium PATH]

For each width x scheme it emulates the viewport (height 900, mobile below 500 px) and the prefers-color-scheme,
loads URL afresh (the page refreshes itself every 10 s: each measurement is of a page loaded a moment before, and
a combination the refresh interrupted is measured again), collects the summary, the backends, horizontal overflow,
WCAG 2 contrast ratios and whether the emulated scheme took effect, and writes a full-page screenshot to
OUTDIR/status-page-<width>-<scheme>.png. Prints {"runs": [...]}; exits 1 with a message on stderr on any
Chromium, CDP or page-load error or timeout. Chromium and its profile directory are removed at exit, errors too.

Each run: width, scheme, screenshot, darkMatched (matchMedia: did the emulation take), bodyBackground, summary
{data: p.summary's data-* without the prefix, integers as numbers; text}, backends [{name, state, health, marks
[{status, title, width, height, background}], operations, objectives, timeline}], overflow (the page is wider than
the emulated width; .scroll containers excepted; overflowing lists what sticks out), contrast {body, minimum,
below (< 4.5, at most 20), belowCount, badges (text on .state), canvas}, logErrors (what Chromium logged as errors:
a CSP violation names the hash it wanted), measuredWithin (seconds after the load event), attempts.

Needs websocket-client (pip) and Debian's chromium. Runtime.evaluate is not subject to the page's
Content-Security-Policy (checked with default-src 'none' and a style-src hash): no workaround needed.
"""
import argparse
import base64
import collections
import ctypes
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

try:
    import websocket
    websocket.create_connection  # websocket-client, not the unrelated PyPI package "websocket"
except (ImportError, AttributeError):
    sys.exit("page_inspector: needs websocket-client: python3 -m pip install websocket-client")

STARTUP_TIMEOUT = 20.0
COMMAND_TIMEOUT = 20.0
LOAD_TIMEOUT = 20.0
SCREENSHOT_HEIGHT_CAP = 10000
# The page's <meta http-equiv="refresh" content="10">: a combination during which the page started loading again
# before its screenshot was taken is measured again on a fresh load, up to this many times.
ATTEMPTS = 3


class InspectorError(Exception):
    pass


class CommandError(InspectorError):
    """A CDP command answered with an error."""


def fail(message):
    raise InspectorError(message)


def die_with_parent():
    """In the child before exec: SIGKILL when this script dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Chromium:
    """One headless Chromium in a process group of its own, with a throwaway profile directory."""

    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="page-inspector-")
        self.stderr_tail = collections.deque(maxlen=40)
        self.devtools_url = None
        self.listening = threading.Event()
        args = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            # Debian's launcher adds this only when /dev/shm looks small, and its check misfires when findmnt
            # prints more than one line; without it Chromium crashes on a small /dev/shm (containers).
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank",
        ]
        try:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True, preexec_fn=die_with_parent)
        except OSError as error:
            shutil.rmtree(self.profile, ignore_errors=True)
            fail(f"cannot start {binary}: {error}")
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self):
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match and not self.listening.is_set():
                self.devtools_url = match.group(1)
                self.listening.set()
        self.listening.set()  # stderr closed: Chromium exited

    def tail(self):
        return "\n".join(self.stderr_tail) or "(nothing)"

    def port(self):
        if not self.listening.wait(STARTUP_TIMEOUT):
            fail(f"Chromium did not print 'DevTools listening on ws://...' within {STARTUP_TIMEOUT:.0f} s; "
                 f"its stderr:\n{self.tail()}")
        if self.devtools_url is None:
            self.process.wait(5)
            fail(f"Chromium exited with status {self.process.returncode} before DevTools listened; "
                 f"its stderr:\n{self.tail()}")
        match = re.match(r"ws://[^/:]+:(\d+)/", self.devtools_url)
        if not match:
            fail(f"cannot read the port from {self.devtools_url!r}")
        return int(match.group(1))

    def page_target(self):
        port = self.port()
        # No proxy: Chromium listens on loopback, and an http_proxy in the environment must not intercept that.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            try:
                with opener.open(f"http://127.0.0.1:{port}/json", timeout=5) as response:
                    targets = json.load(response)
                pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
                last = f"no page target among {[t.get('type') for t in targets]}"
            except (OSError, ValueError) as error:
                last = str(error)
            time.sleep(0.2)
        fail(f"no page target at http://127.0.0.1:{port}/json within {STARTUP_TIMEOUT:.0f} s: {last}")

    def close(self):
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.process.pid, sig)  # its own group (start_new_session): renderers and zygotes too
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            try:  # the browser is gone; children it left behind in its group go too
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for _ in range(10):  # a child may still be writing into the profile for a moment
            shutil.rmtree(self.profile, ignore_errors=True)
            if not os.path.exists(self.profile):
                break
            time.sleep(0.2)


class CDP:
    """A synchronous CDP session on one page target: send() waits for its reply, events are kept in order."""

    def __init__(self, url):
        try:
            # No Origin header: Chromium refuses DevTools websockets whose Origin it was not told to allow.
            self.ws = websocket.create_connection(
                url, timeout=COMMAND_TIMEOUT, suppress_origin=True, http_no_proxy=["127.0.0.1", "localhost"])
        except (OSError, websocket.WebSocketException) as error:
            fail(f"cannot connect to {url}: {error}")
        self.next_id = 0
        self.events = collections.deque()

    def _receive(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail(f"timed out waiting for {what}")
        self.ws.settimeout(remaining)
        try:
            raw = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            fail(f"timed out waiting for {what}")
        except (OSError, websocket.WebSocketException) as error:
            fail(f"DevTools connection lost waiting for {what}: {error!r}")
        return json.loads(raw)

    def send(self, method, params=None, timeout=COMMAND_TIMEOUT):
        self.next_id += 1
        ident = self.next_id
        try:
            self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        except (OSError, websocket.WebSocketException) as error:
            fail(f"DevTools connection lost sending {method}: {error!r}")
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, f"the reply to {method}")
            if message.get("id") == ident:
                if "error" in message:
                    raise CommandError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_event(self, method, timeout):
        """The first event named method, taken out of the kept events; the others stay."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["method"] == method:
                    self.events.remove(event)
                    return event.get("params", {})
            message = self._receive(deadline, method)
            if "method" in message:
                self.events.append(message)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


# Runs in the page (an async function: awaited through Runtime.evaluate with awaitPromise and returnByValue).
COLLECT = r"""
(async () => {
  await document.fonts.ready;
  await new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const css = el => getComputedStyle(el);
  const norm = s => (s || '').replace(/\s+/g, ' ').trim();
  const round = x => Math.round(x * 100) / 100;
  const darkMatched = matchMedia('(prefers-color-scheme: dark)').matches;

  // Colours: rgb()/rgba() directly; anything else (color(), oklch(), ...) through a 1x1 canvas.
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const parse = text => {
    const m = /^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:\s*[,/]\s*([\d.]+)(%?))?\s*\)$/.exec(text);
    if (m) {
      let a = m[4] === undefined ? 1 : parseFloat(m[4]);
      if (m[5] === '%') a /= 100;
      return [parseFloat(m[1]), parseFloat(m[2]), parseFloat(m[3]), a];
    }
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = '#000';
    ctx.fillStyle = text;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];  // ImageData is not premultiplied
  };
  const over = (top, bottom) => {  // alpha-composite top over an opaque bottom
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const hex = c => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
  const luminance = c => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [l1, l2] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return round((l1 + 0.05) / (l2 + 0.05));
  };
  // The canvas behind the root when html and body are transparent: white, or Chromium's dark canvas when the
  // page opted into dark (color-scheme) and dark is in effect.
  const html = document.documentElement;
  const htmlBg = parse(css(html).backgroundColor);
  const canvasColour = htmlBg[3] > 0 ? over(htmlBg, [255, 255, 255, 1])
    : (darkMatched && /dark/.test(css(html).colorScheme + ' ' +
        (document.querySelector('meta[name="color-scheme"]') || {content: ''}).content)
      ? [18, 18, 18, 1] : [255, 255, 255, 1]);
  // The effective background: the element's and its ancestors' background colours, composited from the first
  // opaque one (or the canvas) upwards. imageOnPath: a background-image (gradient) lies somewhere on the way.
  const background = el => {
    const layers = [];
    let imageOnPath = false;
    for (let e = el; e; e = e.parentElement) {
      const s = css(e);
      if (s.backgroundImage && s.backgroundImage !== 'none') imageOnPath = true;
      const c = parse(s.backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let colour = layers.length && layers[layers.length - 1][3] >= 1 ? layers.pop() : canvasColour;
    while (layers.length) colour = over(layers.pop(), colour);
    return {colour, imageOnPath};
  };
  const selector = el => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 3; e = e.parentElement) {
      let part = e.localName + [...e.classList].slice(0, 2).map(c => '.' + c).join('');
      if (e.dataset.backend !== undefined) part += `[data-backend="${e.dataset.backend}"]`;
      parts.unshift(part);
      if (e.dataset.backend !== undefined) break;
    }
    return parts.join(' > ') || el.localName;
  };
  const measure = el => {
    const s = css(el);
    const bg = background(el);
    const fg = parse(s.color);
    const colour = fg[3] < 1 ? over(fg, bg.colour) : fg;
    const size = parseFloat(s.fontSize);
    const bold = parseInt(s.fontWeight, 10) >= 700;
    const entry = {
      selector: selector(el), text: norm(el.textContent).slice(0, 60), ratio: ratio(colour, bg.colour),
      color: hex(colour), background: hex(bg.colour), fontSize: size,
      large: size >= 24 || (bold && size >= 18.66),
    };
    if (bg.imageOnPath) entry.backgroundImage = true;
    return entry;
  };
  const hidden = el => {
    if (el.closest('head, svg, .sr, script, style, template, noscript')) return true;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return true;
    for (let e = el; e; e = e.parentElement) {
      const s = css(e);
      if (s.clipPath !== 'none' || s.visibility === 'hidden' || s.display === 'none' || s.opacity === '0') return true;
    }
    return false;
  };
  const hasOwnText = el => [...el.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.data.trim());

  const texts = [];
  const badges = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!hasOwnText(el) || hidden(el)) continue;
    if (el.closest('.state')) badges.push(measure(el));
    else texts.push(measure(el));
  }
  const body = measure(document.body);
  const all = [body, ...texts].filter(Boolean);
  const minimum = all.reduce((low, e) => (e.ratio < low.ratio ? e : low), all[0]);
  const below = all.filter(e => e.ratio < 4.5).sort((a, b) => a.ratio - b.ratio);

  const num = v => (/^-?\d+$/.test(v) ? parseInt(v, 10) : v);
  const dataOf = el => Object.fromEntries([...el.attributes].filter(a => a.name.startsWith('data-'))
    .map(a => [a.name.slice(5), num(a.value)]));
  const summaryEl = document.querySelector('p.summary');
  const backgroundOf = el => {
    const s = css(el);
    return s.backgroundImage && s.backgroundImage !== 'none' ? s.backgroundImage : s.backgroundColor;
  };
  const backends = [...document.querySelectorAll('section.backend')].map(section => ({
    name: section.getAttribute('data-backend'),
    state: section.getAttribute('data-state'),
    health: section.getAttribute('data-health'),
    marks: [...section.querySelectorAll('li.mark')].map(li => {
      const r = li.getBoundingClientRect();
      return {status: li.getAttribute('data-status'), title: li.getAttribute('title'),
              width: round(r.width), height: round(r.height), background: backgroundOf(li)};
    }),
    operations: [...section.querySelectorAll('tr[data-operation]')].map(tr => tr.getAttribute('data-operation')),
    objectives: [...section.querySelectorAll('tr[data-objective]')].map(tr => tr.getAttribute('data-objective')),
    timeline: [...section.querySelectorAll('ol.timeline li')].map(li => norm(li.innerText)),
  }));

  // Horizontal overflow of the page past the emulated width; what sticks out, unless inside a .scroll container
  // (which scrolls on its own). Not window.innerWidth: a mobile viewport grows to fit content that overflows it
  // (Chromium zooms out), so scrollWidth > innerWidth misses a page 600 px wide on a 390 px phone.
  const viewportWidth = __WIDTH__;
  const limit = viewportWidth + 1;
  const overflowing = [...document.body.querySelectorAll('*')]
    .filter(el => !el.closest('.scroll') && el.getBoundingClientRect().right > limit)
    .filter(el => !el.parentElement || el.parentElement.getBoundingClientRect().right <= limit)
    .slice(0, 10).map(el => ({selector: selector(el), right: round(el.getBoundingClientRect().right)}));

  return {
    url: location.href,
    title: document.title,
    darkMatched,
    colorScheme: css(html).colorScheme,
    bodyBackground: css(document.body).backgroundColor,
    summary: summaryEl ? {data: dataOf(summaryEl), text: norm(summaryEl.innerText)} : null,
    backends,
    overflow: html.scrollWidth > limit,
    scrollWidth: html.scrollWidth,
    innerWidth: window.innerWidth,
    overflowing,
    contrast: {
      body, minimum, checked: all.length,
      below: below.slice(0, 20), belowCount: below.length,
      canvas: hex(canvasColour), badges,
    },
  };
})()
"""


RELOAD_EVENTS = ("Page.frameStartedNavigating", "Page.frameRequestedNavigation", "Page.frameStartedLoading",
                 "Page.frameNavigated")


def log_errors(events):
    return [{key: e["params"]["entry"].get(key) for key in ("source", "text", "url")}
            for e in events
            if e["method"] == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"]


def measure_once(cdp, url, width, scheme, outdir):
    """One fresh load of url at width in scheme, measured and photographed: (run, fresh); not fresh when the page
    started loading again (its meta refresh) before the screenshot was taken."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}
    cdp.send("Emulation.setDeviceMetricsOverride", metrics)
    cdp.send("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
    cdp.events.clear()
    try:
        navigation = cdp.send("Page.navigate", {"url": url}, timeout=LOAD_TIMEOUT)
        if navigation.get("errorText"):
            fail(f"failed: {navigation['errorText']}")
        cdp.wait_event("Page.loadEventFired", LOAD_TIMEOUT)
    except InspectorError as error:
        fail(f"loading {url} at {width} px, {scheme}: {error}")
    loaded = time.monotonic()
    errors = log_errors(cdp.events)
    cdp.events.clear()
    run = {"width": width, "scheme": scheme}
    try:
        result = cdp.send("Runtime.evaluate", {
            "expression": COLLECT.replace("__WIDTH__", str(width)), "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            if not any(e["method"] in RELOAD_EVENTS for e in cdp.events):
                fail(f"evaluating in the page at {width} px, {scheme} failed: {text}")
        else:
            run.update(result["result"].get("value") or {})
            layout = cdp.send("Page.getLayoutMetrics")
            content = layout.get("cssContentSize") or layout.get("contentSize") or {}
            height = min(max(int(math.ceil(content.get("height", 900))), 1), SCREENSHOT_HEIGHT_CAP)
            cdp.send("Emulation.setDeviceMetricsOverride", dict(metrics, height=height))
            shot = cdp.send("Page.captureScreenshot", {"format": "png"})
            path = os.path.join(outdir, f"status-page-{width}-{scheme}.png")
            with open(path, "wb") as out:
                out.write(base64.b64decode(shot["data"]))
            run.update(screenshot=path, screenshotHeight=height, contentHeight=content.get("height"))
        # Drain what arrived meanwhile: a reload that started means the screenshot may not be of this page.
        cdp.send("Runtime.evaluate", {"expression": "0"})
    except CommandError as error:
        # The page navigating away under a command ("Inspected target navigated or closed", "Not attached to an
        # active page", "Execution context was destroyed"): measure again; any other CDP error is one.
        if not any(e["method"] in RELOAD_EVENTS for e in cdp.events) and not re.search(
                r"navigated|not attached|context was destroyed", str(error), re.I):
            raise
        run["reloaded"] = True
    fresh = not run.pop("reloaded", False) and not any(e["method"] in RELOAD_EVENTS for e in cdp.events)
    elapsed = time.monotonic() - loaded
    run["measuredWithin"] = round(elapsed, 2)
    # What the browser logged as errors while loading and measuring: a CSP violation (a style hash that does not
    # match, so the page is unstyled) names the directive and the hash it wanted; a failed subresource; ...
    run["logErrors"] = (errors + log_errors(cdp.events))[:20]
    return run, fresh and "screenshot" in run


def inspect(url, outdir, widths, schemes, binary):
    chromium = Chromium(binary)
    cdp = None
    try:
        cdp = CDP(chromium.page_target())
        cdp.send("Page.enable")
        cdp.send("Log.enable")
        runs = []
        for width in widths:
            for scheme in schemes:
                for attempt in range(1, ATTEMPTS + 1):
                    run, fresh = measure_once(cdp, url, width, scheme, outdir)
                    if fresh:
                        break
                    if attempt == ATTEMPTS:
                        fail(f"{width} px, {scheme}: the page loaded again before it was measured and photographed, "
                             f"in each of {ATTEMPTS} attempts (last: {run['measuredWithin']} s after its load)")
                run["attempts"] = attempt
                runs.append(run)
        return {"chromium": browser_version(cdp), "runs": runs}
    except InspectorError as error:
        if chromium.process.poll() is not None and "its stderr" not in str(error):
            raise InspectorError(f"{error}\nChromium exited with status {chromium.process.returncode}; "
                                 f"its stderr:\n{chromium.tail()}") from None
        raise
    finally:
        if cdp is not None:
            cdp.close()
        chromium.close()


def browser_version(cdp):
    try:
        return cdp.send("Browser.getVersion").get("product")
    except InspectorError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("outdir")
    parser.add_argument("--widths", default="1400,390")
    parser.add_argument("--schemes", default="light,dark")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    try:
        widths = [int(w) for w in args.widths.split(",") if w.strip()]
    except ValueError:
        parser.error(f"--widths: comma-separated integers, not {args.widths!r}")
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    for scheme in schemes:
        if scheme not in ("light", "dark"):
            parser.error(f"--schemes: light and/or dark, not {scheme!r}")
    if not widths or not schemes:
        parser.error("at least one width and one scheme")
    os.makedirs(args.outdir, exist_ok=True)

    # SIGTERM/SIGHUP (a test's timeout) unwind like errors, so Chromium and its profile are still removed.
    def terminate(signum, _frame):
        raise InspectorError(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    try:
        document = inspect(args.url, args.outdir, widths, schemes, args.chromium)
    except InspectorError as error:
        print(f"page_inspector: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("page_inspector: interrupted", file=sys.stderr)
        return 1
    json.dump(document, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
