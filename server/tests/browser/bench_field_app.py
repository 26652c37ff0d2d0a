"""Figures of the field app (BENCHMARKS.md), in headless Chromium; a benchmark, not a test.

    cargo build --release -p xuncha-server && scripts/bindings target/bindings
    XUNCHA_SERVER_BIN=target/release/xuncha-server PYTHONPATH=target/bindings/python \\
        python3 server/tests/browser/bench_field_app.py

Measures, against a release server with the demo district: the app shell and WebAssembly
transferred with gzip; opening the cached app offline until the due list shows (Chromium's CPU
throttling at 4x, a mid-range phone); recording an inspection of the demo's answers (4x); a
12-megapixel photo through the core in wasm against the native pipeline (the FFI) on the same
bytes, in the same run (no throttling). With SYNC_URL (the address the sync_http benchmark
prints with SYNC_SERVE=FILE, SYNC_PARTS=first_sync), also a new phone's first sync of that
grid in the browser, and the longest the page's own thread was blocked meanwhile.
"""

import base64
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

import demo_server

SERVER_BIN = os.environ["XUNCHA_SERVER_BIN"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO = os.path.join(HERE, "..", "..", "..", "..", "shared", "testdata", "exif-orientation",
                     "Landscape_1.jpg")
# What the service worker keeps (sw.js; the core's files are listed by pkg/shell.js).
SHELL = ["", "app.css", "app.js", "core.js", "i18n.js", "worker.js", "manifest.webmanifest",
         "icon.svg", "icon-192.png", "icon-512.png", "vendor/jsqr/jsQR.js", "sw.js",
         "pkg/shell.js"]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def shell_bytes(url):
    total = files = 0
    with urllib.request.urlopen(f"{url}/app/pkg/shell.js") as response:
        core = re.findall(r"'(pkg/[^']+)'", response.read().decode())
    for path in SHELL + core:
        files += 1
        request = urllib.request.Request(f"{url}/app/{path}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as response:
            total += len(response.read())
    return total, files


def throttle(page, rate):
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    return cdp


def core(page, method, *args):
    return page.evaluate("([m, a]) => globalThis.xunchaCore(m, a)", [method, list(args)])


def phone_profile(pw):
    """A phone's browser with a profile on disk, as a real one has. Playwright's usual
    contexts are private windows, whose Origin Private File System lives in memory behind an
    IPC call per read or write (about 1 ms each here, 20 to 40 times slower than on disk)."""
    return pw.chromium.launch_persistent_context(
        tempfile.mkdtemp(), executable_path=CHROMIUM, args=["--no-sandbox"],
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, bypass_csp=True)


def enrolled_phone(pw, url, user, password):
    context = phone_profile(pw)
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(url + "/app/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#sync-status.ok", timeout=600_000)
    page.evaluate("navigator.serviceWorker.ready")
    return context, page


def median_ms(samples):
    return statistics.median(samples) * 1000 if samples else float("nan")


def main():
    tmp = tempfile.mkdtemp()
    server, url = demo_server.start(SERVER_BIN, os.path.join(tmp, "data"))
    try:
        with sync_playwright() as pw:
            shell, files = shell_bytes(url)
            print(f"app shell + wasm, gzip: {shell / 1e6:.2f} MB ({files} files)")

            context, page = enrolled_phone(pw, url, "w01", "xuncha-demo")
            # Opening the cached app offline until the due list shows, CPU at 1/4. One window
            # holds the database at a time: the enrolling one closes first.
            page.close()
            context.set_offline(True)
            opened = []
            for _ in range(RUNS):
                fresh = context.new_page()
                throttle(fresh, 4)
                started = time.perf_counter()
                fresh.goto(url + "/app/")
                fresh.wait_for_selector(".due-item", timeout=60_000)
                opened.append(time.perf_counter() - started)
                fresh.close()
            print(f"open cached app offline to due list, 4x CPU throttling: median "
                  f"{median_ms(opened):.0f} ms of {RUNS} (min {min(opened) * 1000:.0f})")

            # Recording an inspection: a demo visit's answers again, CPU at 1/4.
            page = context.new_page()
            page.goto(url + "/app/")
            page.wait_for_selector(".due-item", timeout=60_000)
            shops = core(page, "list_premises", False)
            best = None
            for shop in shops[:20]:
                for visit in core(page, "inspections_of", shop["id"]):
                    if best is None or len(visit["answers"]) > len(best["answers"]):
                        best = visit
            draft = {
                "premises_id": best["premises_id"],
                "kinds": [c["kind"] for c in best["checklists"]],
                "answers": best["answers"], "geotag": best.get("geotag"),
                "note": None, "supersedes": None,
            }
            throttle(page, 4)
            timings = page.evaluate("""async ([draft, runs]) => {
                const out = [];
                for (let i = 0; i < runs; i++) {
                    const t = performance.now();
                    await globalThis.xunchaCore('record_inspection', [draft]);
                    out.push(performance.now() - t);
                }
                return out;
            }""", [draft, RUNS * 4])
            print(f"record an inspection of {len(draft['answers'])} answers in wasm, 4x CPU "
                  f"throttling (round trip page -> worker -> page): median "
                  f"{statistics.median(timings):.1f} ms of {len(timings)}")
            throttle(page, 1)

            # A 12-megapixel JPEG, made in the page from the shared photograph, through the
            # core in wasm; then the same bytes through the native pipeline (FFI).
            source = base64.b64encode(open(PHOTO, "rb").read()).decode()
            result = page.evaluate("""async ([source, runs]) => {
                const raw = Uint8Array.from(atob(source), (c) => c.charCodeAt(0));
                const bitmap = await createImageBitmap(new Blob([raw], { type: 'image/jpeg' }));
                const canvas = new OffscreenCanvas(4000, 3000);
                canvas.getContext('2d').drawImage(bitmap, 0, 0, 4000, 3000);
                const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
                const bytes = new Uint8Array(await blob.arrayBuffer());
                const out = [];
                for (let i = 0; i < runs; i++) {
                    const t = performance.now();
                    await globalThis.xunchaCore('add_photo', [bytes]);
                    out.push(performance.now() - t);
                }
                let text = '';
                for (let i = 0; i < bytes.length; i += 0x8000) {
                    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
                }
                return { timings: out, jpeg: btoa(text) };
            }""", [source, RUNS])
            jpeg = base64.b64decode(result["jpeg"])
            wasm_ms = statistics.median(result["timings"])
            native_ms = native_photo_ms(jpeg, url)
            print(f"12 MP photo ({len(jpeg) // 1024} KB JPEG) through the core: wasm median "
                  f"{wasm_ms:.0f} ms, native {native_ms:.0f} ms: {wasm_ms / native_ms:.2f}x")
            context.close()

            sync_url = os.environ.get("SYNC_URL")
            if sync_url:
                first_sync(pw, sync_url)
    finally:
        demo_server.stop(server)


def native_photo_ms(jpeg, url):
    try:
        import xuncha as x
    except ImportError:
        print("(no FFI bindings on PYTHONPATH: native photo timing skipped)", file=sys.stderr)
        return float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        phone = x.Phone.open(os.path.join(tmp, "p.sqlite3"), url)
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            phone.add_photo(jpeg, [])
            samples.append(time.perf_counter() - started)
        phone.close()
    return median_ms(samples)


def first_sync(pw, sync_url):
    """A new phone's first sync of the bench's grid, and the page's longest stall meanwhile."""
    context = phone_profile(pw)
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(sync_url + "/app/")
    page.fill("input[name=user]", "worker-0")
    page.fill("input[name=password]", "password1")
    # The page's own thread: the longest gap between animation frames, and between the ticks
    # of a 20 ms timer, during the sync (with when each gap over half a second began).
    page.evaluate("""() => {
        globalThis.gaps = { frame: 0, timer: 0, long: [] };
        const watch = (kind) => {
            let last = performance.now();
            return (now = performance.now()) => {
                const gap = now - last;
                gaps[kind] = Math.max(gaps[kind], gap);
                if (gap > 500) gaps.long.push(`${kind} ${Math.round(gap)} ms at ${Math.round(last - gaps.start)} ms`);
                last = now;
            };
        };
        const frame = watch('frame');
        const tick = (now) => { frame(now); requestAnimationFrame(tick); };
        requestAnimationFrame(tick);
        setInterval(watch('timer'), 20);
        gaps.start = performance.now();
    }""")
    started = time.perf_counter()
    page.click("button[type=submit]")
    page.wait_for_selector("#sync-status.ok", timeout=900_000)
    secs = time.perf_counter() - started
    status = core(page, "status")
    held = page.evaluate("globalThis.xunchaCore('list_premises', [false]).then((p) => p.length)")
    gaps = page.evaluate("globalThis.gaps")
    text = page.inner_text("#sync-status")
    print(f"first sync into the browser (enrol + sync + photo queue): {secs:.1f} s; {text}; "
          f"{held} premises, {status['pending_ops']} pending; the page's longest gap between "
          f"frames {gaps['frame']:.0f} ms, between timer ticks {gaps['timer']:.0f} ms "
          f"{gaps['long']}")
    context.close()


if __name__ == "__main__":
    main()
