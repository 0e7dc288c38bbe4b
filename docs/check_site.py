"""Look at the built documentation the way a reader's browser does.

Usage (from the repository root, after building the site)::

    sphinx-build -W --keep-going -b html docs site
    python docs/check_site.py site                      # every page at 1280 px
    python docs/check_site.py site --width 1024 --screenshots /tmp/shots

The script builds nothing. It opens every HTML page of the built site in headless
Chromium (Debian: ``apt-get install chromium-headless-shell``; ``chromium`` works too)
at the given window width and reports, per page:

* content that is wider than its column and is not inside a horizontal scroll
  container (a table, code block, formula or picture that runs past the column or off
  the screen), and content cut off by a container that hides its overflow;
* images that did not load;
* links to an anchor (``page.html#section`` or ``#section``) that the target page does
  not have.

It talks to the browser over the DevTools protocol on a pipe
(``--remote-debugging-pipe``), so it needs nothing beyond the Python standard library
and the browser. MathJax comes from a CDN; offline, formulas stay as TeX source, which
does not change the checks. Exit status: 0 when no page has a problem, 1 when some
page has, 2 when the browser or the site cannot be found.
"""

import argparse
import base64
import html.parser
import json
import mimetypes
import os
import select
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")

# Runs in the page after its load event. Returns what the reader would see wrong.
PAGE_SCRIPT = r"""
(async () => {
  // Let MathJax typeset (when it could be loaded) and images settle.
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const problems = [];
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    const typeset = MathJax.startup.promise.catch((error) => {
      problems.push(`math: MathJax failed (${error.message})`);
    });
    await Promise.race([typeset, pause(10000)]);
  }
  await pause(150);
  const viewport = document.documentElement.clientWidth;
  const column = document.querySelector("article") || document.body;
  const columnRight = column.getBoundingClientRect().right;
  const describe = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += "#" + el.id;
    if (el.classList.length) text += "." + [...el.classList].slice(0, 3).join(".");
    const section = el.closest("section[id]");
    if (section) text += " in #" + section.id;
    return text;
  };
  const inFixedLayer = (el) => {
    for (let p = el; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (style.position === "fixed" || style.visibility === "hidden" || style.display === "none") {
        return true;
      }
    }
    return false;
  };
  const clipper = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const overflow = getComputedStyle(p).overflowX;
      if (overflow !== "visible") return [p, overflow];
    }
    return [null, "visible"];
  };
  const reported = new Set();
  // Text blocks overflow when their content is wider than their own box (a long word,
  // a formula); the theme may pull a heading's box a few px into the margin on purpose.
  const textBlocks = new Set(["P", "LI", "DD", "DT", "H1", "H2", "H3", "H4", "H5", "H6"]);
  const candidates = column.querySelectorAll(
    "table, pre, img, svg, mjx-container, .math, figure, p, li, dd, dt, h1, h2, h3, h4, h5, h6"
  );
  for (const el of candidates) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0 || inFixedLayer(el)) continue;
    if ([...reported].some((r) => r.contains(el))) continue;
    const [box, overflow] = clipper(el);
    if (box && (overflow === "auto" || overflow === "scroll")) continue;  // scrolls: fine
    const right = box ? box.getBoundingClientRect().right : columnRight;
    const limit = Math.min(right, viewport);
    const excess = textBlocks.has(el.tagName)
      ? Math.max(el.scrollWidth - el.clientWidth, Math.round(rect.right - viewport))
      : Math.round(rect.right - limit);
    if (excess > 8) {
      const how = box ? `cut off by an overflow:${overflow} container` : "runs past the column";
      problems.push(`overflow: ${describe(el)} ${how} by ${excess}px`);
      reported.add(el);
    }
  }
  if (document.documentElement.scrollWidth > viewport + 1) {
    const width = document.documentElement.scrollWidth;
    problems.push(`overflow: the page scrolls sideways (${width}px wide)`);
  }
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) {
      problems.push(`image: ${img.getAttribute("src")} did not load`);
    }
  }
  return problems;
})()
"""


class _Ids(html.parser.HTMLParser):
    """Collects element ids and local links (``href``) of one HTML file."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value is None:
                continue
            if key in ("id", "name"):
                self.ids.add(value)
            elif key == "href" and tag == "a":
                self.links.append(value)


def missing_anchors(site: Path, pages: list[Path]) -> dict[Path, list[str]]:
    """Links to ``#fragment`` that their target page lacks, per page."""
    parsed: dict[Path, _Ids] = {}

    def parse(path: Path) -> _Ids:
        if path not in parsed:
            parser = _Ids()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            parsed[path] = parser
        return parsed[path]

    result: dict[Path, list[str]] = {}
    for page in pages:
        for href in parse(page).links:
            url = urllib.parse.urlsplit(href)
            if url.scheme or url.netloc or not url.fragment:
                continue
            target = (page.parent / urllib.parse.unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.parents:
                result.setdefault(page, []).append(f"link: {href} points to a missing file")
                continue
            fragment = urllib.parse.unquote(url.fragment)
            if fragment not in parse(target).ids:
                result.setdefault(page, []).append(f"anchor: {href} has no target")
    return result


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(
        self, executable: str, width: int, height: int, serve: dict[str, Path] | None = None
    ) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds() -> None:  # in the child: the protocol wants fds 3 (in) and 4 (out)
            # Copy first: a pipe end may already be fd 3 or 4, and dup2 onto itself would
            # keep its close-on-exec flag.
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        args = [
            executable,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("CHECK_SITE_DEBUG") else subprocess.DEVNULL,
            preexec_fn=child_fds,  # the script has no threads, so this is safe
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
            session=True,
        )
        self.call("Page.enable", session=True)
        # Requests to the web are answered from local folders (--serve) or refused at
        # once, so a page never waits for a network that CI does not have.
        self._serve = serve or {}
        self._reply_id = 10**9  # ids of fire-and-forget answers, apart from call()'s
        patterns = [{"urlPattern": "http://*"}, {"urlPattern": "https://*"}]
        self.call("Fetch.enable", patterns=patterns, session=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the browser did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(message)
        if message.get("method") == "Fetch.requestPaused":
            self._answer_request(message["params"], message.get("sessionId"))
        return message

    def _answer_request(self, params: dict, session: str | None) -> None:
        url = params["request"]["url"].split("#")[0].split("?")[0]
        body = None
        for prefix, folder in self._serve.items():
            if url.startswith(prefix):
                path = folder / urllib.parse.unquote(url[len(prefix) :])
                if path.is_file():
                    body = path.read_bytes()
                break
        if body is None:
            if os.environ.get("CHECK_SITE_DEBUG"):
                print("refused:", url, file=sys.stderr)
            method = "Fetch.failRequest"
            args = {"requestId": params["requestId"], "errorReason": "InternetDisconnected"}
        else:
            method = "Fetch.fulfillRequest"
            kind = mimetypes.guess_type(url)[0] or "application/octet-stream"
            args = {
                "requestId": params["requestId"],
                "responseCode": 200,
                "responseHeaders": [
                    {"name": "Content-Type", "value": kind},
                    {"name": "Access-Control-Allow-Origin", "value": "*"},
                ],
                "body": base64.b64encode(body).decode(),
            }
        self._reply_id += 1
        message = {"id": self._reply_id, "method": method, "params": args}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")

    def call(self, method: str, *, session: bool = False, timeout: float = 30, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self._events):
                if message.get("method") == event:
                    del self._events[: i + 1]
                    return
            self._events.clear()
            message = self._read_message(deadline)
            if "method" in message:
                self._events.append(message)

    def open(self, url: str, timeout: float) -> None:
        self._events.clear()
        self.call("Page.navigate", url=url, session=True)
        self.wait_for("Page.loadEventFired", timeout)

    def evaluate(self, expression: str):
        result = self.call(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            session=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            session=True,
            timeout=60,
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def find_browser(name: str | None) -> str | None:
    for candidate in (name,) if name else BROWSERS:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def site_pages(site: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(
        p for p in site.rglob("*.html") if p.name not in skip and "_static" not in p.parts
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default="site", type=Path, help="built site folder")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS px")
    parser.add_argument("--height", type=int, default=900, help="window height in CSS px")
    parser.add_argument("--browser", help="browser executable (default: first one found)")
    parser.add_argument("--screenshots", type=Path, help="save a full-page PNG of each page here")
    parser.add_argument("--timeout", type=float, default=20, help="seconds to load one page")
    parser.add_argument(
        "--serve",
        action="append",
        default=[],
        metavar="URL_PREFIX=FOLDER",
        help="answer requests under URL_PREFIX from FOLDER (e.g. a local copy of MathJax); "
        "other requests to the web are refused",
    )
    args = parser.parse_args(argv)

    site = args.site
    if not (site / "index.html").is_file():
        print(f"{site}: no index.html; build the site first", file=sys.stderr)
        return 2
    executable = find_browser(args.browser)
    if executable is None:
        wanted = args.browser or " or ".join(BROWSERS)
        print(
            f"no browser found ({wanted}); on Debian: apt-get install chromium-headless-shell",
            file=sys.stderr,
        )
        return 2

    pages = site_pages(site)
    problems = missing_anchors(site, pages)
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    serve = {}
    for item in args.serve:
        prefix, _, folder = item.partition("=")
        if not folder or not Path(folder).is_dir():
            print(f"--serve {item}: expected URL_PREFIX=FOLDER", file=sys.stderr)
            return 2
        serve[prefix] = Path(folder)
    browser = Browser(executable, args.width, args.height, serve)
    try:
        for page in pages:
            url = page.resolve().as_uri()
            try:
                browser.open(url, args.timeout)
                found = browser.evaluate(PAGE_SCRIPT) or []
            except (RuntimeError, TimeoutError) as error:
                found = [f"load: {error}"]
            problems.setdefault(page, []).extend(found)
            if args.screenshots:
                name = page.relative_to(site).with_suffix(".png").as_posix().replace("/", "--")
                browser.screenshot(args.screenshots / name)
    finally:
        browser.close()

    bad = {page: found for page, found in problems.items() if found}
    for page in sorted(bad):
        print(page.relative_to(site))
        for problem in bad[page]:
            print("   ", problem)
    print(f"{len(pages)} pages at {args.width} px: {len(bad)} with problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
