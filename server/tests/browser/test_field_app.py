"""The grid worker's field app (/app/) in headless Chromium as a phone (390 x 844, touch,
geolocation granted and set) against a real server with the demo district: the shared core
in WebAssembly with its database in the Origin Private File System. Enrol, go offline, reload
(the service worker serves the app), add a shop, inspect it with all four checklists and real
photographs (rotated ones too), close and reopen offline: everything is still there; back
online, sync and upload; the supervisor sees the hazards with their photos and extends one;
the phone shows the new deadline. Also: a sync cut off half-way loses and duplicates nothing,
phones in two browsers and one native phone (the FFI) converge, and a second window that
cannot open the database says so instead of pretending to save. Run by scripts/browser-test."""

import base64
import datetime
import os
import re
import tempfile
import time
import unittest

from playwright.sync_api import expect, sync_playwright

import demo_server

import xuncha as x

SERVER_BIN = os.environ["XUNCHA_SERVER_BIN"]
SHOTS = os.environ.get("XUNCHA_SCREENSHOTS", tempfile.gettempdir())
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "xuncha-demo"
PHOTOS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "testdata",
                      "exif-orientation")
# Inside grid XF-01 of the demo district (w01's).
HERE = {"latitude": 31.2230, "longitude": 121.4580, "accuracy": 12}
LONG = 120_000  # ms: a first sync of a grid, wasm start-up on a busy CI machine


def photo(name):
    return os.path.normpath(os.path.join(PHOTOS, name))


class FieldApp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.server, cls.url = demo_server.start(SERVER_BIN, os.path.join(cls.tmp.name, "data"))
        cls.pw = sync_playwright().start()
        cls.browser = cls.pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.pw.stop()
        demo_server.stop(cls.server)
        cls.tmp.cleanup()

    def setUp(self):
        self.errors = []
        self.contexts = []

    def tearDown(self):
        for context in self.contexts:
            context.close()
        self.assertEqual(self.errors, [], "no script errors on the pages")

    # ---- helpers ----

    def phone_context(self, bypass_csp=True):
        # Playwright's helpers evaluate strings, which the app's policy forbids; one test runs
        # under the policy as served.
        context = self.browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
            has_touch=True, geolocation=HERE, permissions=["geolocation"], locale="zh-CN",
            bypass_csp=bypass_csp)
        self.contexts.append(context)
        return context

    def open_app(self, context):
        page = context.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(self.url + "/app/")
        return page

    def enroll(self, page, user="w01"):
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#sync-status.ok")).to_be_visible(timeout=LONG)

    def core(self, page, method, *args):
        return page.evaluate("([m, a]) => globalThis.xunchaCore(m, a)", [method, list(args)])

    def wait_rendered(self, page):
        page.wait_for_function(
            "document.querySelector('#items')?.dataset.rendered !== undefined")

    def answer_everything(self, page, hazards):
        """Answers every item shown, one at a time (an answer can bring items in): `hazards`
        maps item codes to the button to press there; yes/no items otherwise get 是, choices
        their first option, counts 2, numbers 1, dates a recent day."""
        recent = (datetime.date.today() - datetime.timedelta(days=30)).isoformat()
        for _ in range(120):
            self.wait_rendered(page)
            card = page.locator(".item[data-code]:not([data-answered])").first
            if card.count() == 0:
                return
            code = card.get_attribute("data-code")
            before = page.get_attribute("#items", "data-rendered")
            yes = card.get_by_role("button", name="是", exact=True)
            if code in hazards:
                card.get_by_role("button", name=hazards[code], exact=True).click()
            elif yes.count():
                yes.click()
            elif card.locator("input[type=date]").count():
                card.locator("input[type=date]").fill(recent)  # fires change itself
            elif card.locator("input[type=number]:not([aria-label])").count():
                value = card.locator("input[type=number]:not([aria-label])")
                value.fill("2")
                value.dispatch_event("change")
            else:
                card.locator(".choices button").first.click()
            page.wait_for_function(
                f"document.querySelector('#items').dataset.rendered !== '{before}'")
            # The item's second value (how many), where it has one.
            detail = page.locator(f".item[data-code='{code}'] input[aria-label]")
            if detail.count():
                detail.fill("1")
                detail.dispatch_event("change")
        self.fail("the checklist never ran out of items")

    def record(self, page, photos):
        """Saves the inspection; when the core asks for a photo on an item, takes one there
        (from the shared photographs) and saves again, as a worker would."""
        photos = list(photos)
        for _ in range(10):
            page.click("#record")
            outcome = page.locator("#findings, #inspect-status.error")
            expect(outcome.first).to_be_visible(timeout=LONG)
            if page.locator("#findings").count():
                return
            message = page.inner_text("#inspect-status")
            wanted = re.search(r"\b([A-Z]{2}-\d{2})\b", message)
            self.assertTrue(wanted and "photo" in message.lower(), message)
            card = page.locator(f".item[data-code='{wanted.group(1)}']")
            card.locator("input[type=file]").set_input_files(photo(photos.pop(0)))
            expect(card.locator(".thumbs img")).to_have_count(1, timeout=LONG)
        self.fail("the inspection was never accepted")

    # ---- tests ----

    def test_offline_inspection_reaches_the_dashboard_and_back(self):
        context = self.phone_context()
        page = self.open_app(context)
        self.enroll(page)
        self.assertGreater(len(self.core(page, "list_premises", False)), 5,
                           "the first sync brought w01's grid")
        page.evaluate("navigator.serviceWorker.ready")
        page.screenshot(path=os.path.join(SHOTS, "app-today.png"))
        # Installable: the manifest parses, its icons load.
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        self.assertEqual(manifest.get("errors"), [], manifest)
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        # Playwright's contexts are private windows, where nothing installs.
        self.assertEqual([e["errorId"] for e in errors if e["errorId"] != "in-incognito"], [])
        cdp.detach()  # an attached session keeps the offline emulation from taking hold

        # Offline from here: the service worker serves the app, the core keeps everything.
        context.set_offline(True)
        page.reload()
        expect(page.locator("#net")).to_have_text("离线")
        expect(page.locator("#sync")).to_be_visible(timeout=LONG)

        page.goto(self.url + "/app/#/premises-new")
        page.fill("#name", "测试小吃店")
        page.fill("#address", "幸福路 18 号")
        page.select_option("#kind", "catering")
        page.select_option("#gas_use", "bottled_lpg")
        page.fill("#storeys", "1")
        page.fill("#max_occupants", "30")
        page.get_by_role("button", name=re.compile("使用当前位置")).click()
        expect(page.locator("form")).to_contain_text("精度约 12 米")
        expect(page.locator("#grid_id")).to_have_value("XF-01")  # the grid it stands in
        page.get_by_role("button", name="保存").click()
        expect(page.locator("h1")).to_have_text("测试小吃店")
        shop = page.url.split("#/premises/")[1]

        page.click("#inspect")
        expect(page.locator("#geotag")).to_contain_text("精度约 12 米")
        self.wait_rendered(page)
        for kind in page.locator("[data-kind][aria-pressed=false]").all():
            kind.click()  # all four checklists
        self.wait_rendered(page)
        # The gauge out of the green zone with a photo of it, taken upright by the core.
        gauge = page.locator(".item[data-code='FE-01'] input[type=number]")
        gauge.fill("2")
        gauge.dispatch_event("change")
        page.wait_for_selector(".item[data-code='FE-03']")
        page.locator(".item[data-code='FE-03'] input[type=file]").set_input_files(
            photo("Landscape_6.jpg"))
        expect(page.locator(".item[data-code='FE-03'] .thumbs img")).to_have_count(1,
                                                                               timeout=LONG)
        # E-bikes charged indoors (a hazard that needs a photo); otherwise a tidy shop.
        self.answer_everything(page, {"FE-03": "否", "EB-01": "是", **{
            code: "否" for code in ("EB-02", "EB-03", "EB-04", "EX-01", "EX-02", "EX-04")}})
        page.screenshot(path=os.path.join(SHOTS, "app-inspection.png"), full_page=False)
        self.record(page, ["Portrait_5.jpg", "Landscape_3.jpg", "Portrait_8.jpg",
                           "Landscape_1.jpg", "Portrait_2.jpg"])
        findings = page.locator("#findings .finding")
        self.assertGreaterEqual(findings.count(), 1)
        expect(findings.first).to_contain_text("整改期限")
        found = findings.count()
        pending = self.core(page, "status")
        self.assertGreater(pending["pending_ops"], 0)
        self.assertGreater(pending["pending_photos"], 0)

        # Close the app and open it again, still offline: all of it is there.
        page.close()
        page = self.open_app(context)
        expect(page.locator("#sync")).to_be_visible(timeout=LONG)
        again = self.core(page, "status")
        self.assertEqual(again["pending_ops"], pending["pending_ops"])
        hazards = self.core(page, "hazards_of", shop)
        self.assertEqual(len(hazards), found)
        digest_offline = self.core(page, "digest")

        # Online: sync and upload.
        context.set_offline(False)
        page.click("#sync")
        expect(page.locator("#sync-status.ok")).to_contain_text("照片", timeout=LONG)
        after = self.core(page, "status")
        self.assertEqual(after["set_aside"], 0, self.core(page, "set_aside_changes"))
        self.assertEqual(after["pending_ops"], 0)
        self.assertEqual(after["pending_photos"], 0)
        self.assertEqual(self.core(page, "digest"), digest_offline,
                         "the sync changed nothing in what the phone holds")

        # The supervisor sees them with their photos and extends one.
        boss = self.browser.new_context(viewport={"width": 1400, "height": 860}, bypass_csp=True)
        self.contexts.append(boss)
        dash = boss.new_page()
        dash.goto(self.url + "/")
        dash.fill("input[name=user]", "leader-xf")
        dash.fill("input[name=password]", PASSWORD)
        dash.click("#login-form button[type=submit]")
        expect(dash.locator("#who")).to_contain_text("leader-xf")
        gauge_hazard = next(h for h in hazards if h["origin"]["finding"]["code"] == "FE-03")
        dash.evaluate(f"location.hash = 'hazard={gauge_hazard['id']}'")
        detail = dash.locator("#detail")
        expect(detail).to_contain_text("测试小吃店")
        expect(detail.locator("img").first).to_be_visible(timeout=LONG)
        dash.click("#extend")
        # Extensions fall on working days: take the latest the dialog offers.
        choice = dash.locator("#action-choices button").last
        new_deadline = choice.get_attribute("data-date")
        choice.click()
        self.assertEqual(dash.input_value("#action-date"), new_deadline)
        dash.fill("#action-reason", "店主申请延期")
        dash.click("#action-confirm")
        expect(detail.locator(".ok")).to_be_visible()

        # The phone sees the new deadline after its next sync.
        page.click("#sync")
        expect(page.locator("#sync-status.ok")).to_be_visible(timeout=LONG)
        # The worker turns the morning reminder off (online).
        page.click("#reminders-off")
        expect(page.locator("#reminder-status.ok")).to_have_text("已关闭")
        page.goto(self.url + f"/app/#/hazard/{gauge_hazard['id']}")
        expect(page.locator("#hazard-deadline")).to_contain_text(new_deadline)
        page.screenshot(path=os.path.join(SHOTS, "app-hazard.png"))

    def test_a_sync_cut_off_half_way_loses_and_duplicates_nothing(self):
        context = self.phone_context()
        page = self.open_app(context)
        self.enroll(page, "w02")
        premises = self.core(page, "list_premises", False)
        for i in range(3):
            self.core(page, "archive_premises", premises[i]["id"], True)
        self.assertEqual(self.core(page, "status")["pending_ops"], 3)
        # Every push fails on the way (the server never answers): the sync gives up, the
        # changes stay waiting, nothing says they were sent.
        page.route("**/v1/sync/push", lambda route: route.abort("connectionreset"))
        page.click("#sync")
        expect(page.locator("#sync-status.error")).to_be_visible(timeout=LONG)
        self.assertEqual(self.core(page, "status")["pending_ops"], 3)
        # A push that reached the server but whose answer was lost: sent again, stored once.
        page.unroute("**/v1/sync/push")
        lost = {"n": 0}

        def lose_first_answer(route):
            response = route.fetch()
            lost["n"] += 1
            if lost["n"] == 1:
                route.abort("connectionreset")
            else:
                route.fulfill(response=response)

        page.route("**/v1/sync/push", lose_first_answer)
        page.click("#sync")
        expect(page.locator("#sync-status.ok")).to_be_visible(timeout=LONG)
        self.assertGreaterEqual(lost["n"], 2)
        self.assertEqual(self.core(page, "status")["pending_ops"], 0)
        # A native phone of the same grid receives each change once and agrees.
        native = x.Phone.open(os.path.join(self.tmp.name, "w02-native.sqlite3"), self.url)
        native.enroll("w02", PASSWORD, "native")
        native.sync(None)
        self.assertEqual(native.digest(), self.core(page, "digest"))
        archived = [p for p in native.list_premises(True) if p.archived]
        self.assertEqual(len(archived), 3)

    def test_closing_the_page_during_a_sync_loses_nothing(self):
        context = self.phone_context()
        page = self.open_app(context)
        self.enroll(page, "w04")
        premises = self.core(page, "list_premises", False)
        for p in premises[:2]:
            self.core(page, "archive_premises", p["id"], True)
        # The page closes while the push is on its way: the server stores it, its answer is
        # lost with the page.
        sent = []

        def store_then_close(route):
            route.fetch()  # reaches the server
            sent.append(route.request.url)
            route.abort("connectionreset")

        page.route("**/v1/sync/push", store_then_close)
        page.click("#sync")
        page.wait_for_function("true")
        for _ in range(100):
            if sent:
                break
            page.wait_for_timeout(50)
        self.assertTrue(sent, "the push reached the server")
        page.close(run_before_unload=False)
        page = self.open_app(context)
        expect(page.locator("#sync")).to_be_visible(timeout=LONG)
        # Nothing was acknowledged, so nothing left the outbox: the sync the app starts on
        # opening sends it (the server may hold it already: it stores it once).
        expect(page.locator("#sync-status.ok")).to_be_visible(timeout=LONG)
        self.assertEqual(self.core(page, "status")["pending_ops"], 0)
        native = x.Phone.open(os.path.join(self.tmp.name, "w04-native.sqlite3"), self.url)
        native.enroll("w04", PASSWORD, "native")
        native.sync(None)
        self.assertEqual(native.digest(), self.core(page, "digest"))
        self.assertEqual(len([p for p in native.list_premises(True) if p.archived]), 2)

    def test_two_browsers_and_a_native_phone_converge(self):
        phones = []
        for _ in range(2):
            context = self.phone_context()
            page = self.open_app(context)
            self.enroll(page, "w03")
            phones.append((context, page))
        native = x.Phone.open(os.path.join(self.tmp.name, "w03-native.sqlite3"), self.url)
        native.enroll("w03", PASSWORD, "native")
        native.sync(None)
        shop = native.list_premises(False)[0]
        # All three edit the same shop offline.
        for i, (context, page) in enumerate(phones):
            context.set_offline(True)
            before = self.core(page, "premises", shop.id)
            after = dict(before, phone=f"1380000000{i}", contact_person=f"店主{i}")
            del before["id"], after["id"]
            self.core(page, "edit_premises", shop.id, before, after)
        before = shop.fields
        after = x.PremisesFields(**{**before.__dict__, "address": before.address + "（北门）"})
        native.edit_premises(shop.id, before, after)
        for context, page in phones:
            context.set_offline(False)
            page.click("#sync")
            expect(page.locator("#sync-status.ok")).to_be_visible(timeout=LONG)
        native.sync(None)
        for context, page in phones:
            page.click("#sync")
            expect(page.locator("#sync-status.ok")).to_be_visible(timeout=LONG)
        digests = {self.core(page, "digest") for _, page in phones} | {native.digest()}
        self.assertEqual(len(digests), 1, digests)
        merged = self.core(phones[0][1], "premises", shop.id)
        self.assertTrue(merged["address"].endswith("（北门）"), "the native edit survived")
        self.assertIn(merged["phone"], ("13800000000", "13800000001"))

    def test_photos_are_stamped_with_when_where_and_which_shop(self):
        context = self.phone_context()
        page = self.open_app(context)
        self.enroll(page)
        shop = self.core(page, "list_premises", False)[0]
        page.goto(f"{self.url}/app/#/premises/{shop['id']}")
        page.click("#inspect")
        expect(page.locator("#geotag")).to_contain_text("精度约 12 米")
        self.wait_rendered(page)
        card = page.locator(".item[data-code]").first
        card.locator("input[type=file]").set_input_files(photo("Landscape_5.jpg"))
        stamped = card.locator(".thumbs img").get_attribute("data-sha256", timeout=LONG)
        with open(photo("Landscape_5.jpg"), "rb") as f:
            original = base64.b64encode(f.read()).decode()
        # The same picture without a watermark, through the same core, to compare with.
        seen = page.evaluate("""async ([stamped, original]) => {
            const bytes = Uint8Array.from(atob(original), (c) => c.charCodeAt(0));
            const plain = await globalThis.xunchaCore('add_photo', [bytes, []]);
            const pixels = async (sha) => {
                const jpeg = await globalThis.xunchaCore('photo', [sha, false]);
                const bitmap = await createImageBitmap(new Blob([jpeg], { type: 'image/jpeg' }));
                const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
                const ctx = canvas.getContext('2d');
                ctx.drawImage(bitmap, 0, 0);
                return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
            };
            const [a, b] = [await pixels(plain.sha256), await pixels(stamped)];
            const { width: w, height: h } = a;
            const diff = (from, to) => {
                let sum = 0;
                for (let i = from * w * 4; i < to * w * 4; i++) if (i % 4 !== 3) sum += Math.abs(a.data[i] - b.data[i]);
                return sum / ((to - from) * w * 3);
            };
            let bright = 0;
            for (let i = Math.floor(h * 0.9) * w * 4; i < h * w * 4; i += 4) {
                if (b.data[i] > 225 && b.data[i + 1] > 225 && b.data[i + 2] > 225) bright++;
            }
            return { size: [w, h, b.width, b.height], plain: plain.sha256,
                     top: diff(0, Math.floor(h / 2)), band: diff(Math.floor(h * 0.93), h), bright };
        }""", [stamped, original])
        self.assertNotEqual(seen["plain"], stamped)
        self.assertEqual(seen["size"][:2], seen["size"][2:])
        self.assertLess(seen["top"], 2, seen)  # the picture itself untouched
        self.assertGreater(seen["band"], 20, seen)  # the band darkened, text drawn
        self.assertGreater(seen["bright"], 300, seen)  # white text in it

    def test_a_full_phone_says_so_and_keeps_nothing_half_saved(self):
        context = self.phone_context()
        page = self.open_app(context)
        self.enroll(page)
        shop = self.core(page, "list_premises", False)[0]
        page.goto(f"{self.url}/app/#/premises/{shop['id']}")
        page.click("#inspect")
        self.wait_rendered(page)
        before = (self.core(page, "status"), self.core(page, "digest"))
        # The browser allows this origin hardly more than it holds already.
        cdp = context.new_cdp_session(page)
        usage = page.evaluate("navigator.storage.estimate()")["usage"]
        cdp.send("Storage.overrideQuotaForOrigin",
                 {"origin": self.url, "quotaSize": usage + 20_000})
        card = page.locator(".item[data-code]").first
        card.locator("input[type=file]").set_input_files(photo("Landscape_2.jpg"))
        expect(page.locator("#inspect-status.error")).to_contain_text("存储空间不足",
                                                                       timeout=LONG)
        expect(card.locator(".thumbs img")).to_have_count(0)
        self.assertEqual((self.core(page, "status"), self.core(page, "digest")), before,
                         "nothing of the refused photo is kept")
        # Space freed: the same button works, the database is whole.
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": self.url})
        cdp.detach()
        card.locator("input[type=file]").set_input_files(photo("Landscape_2.jpg"))
        expect(card.locator(".thumbs img")).to_have_count(1, timeout=LONG)
        self.assertEqual(self.core(page, "digest"), before[1])

    def test_a_long_due_list_comes_a_page_at_a_time(self):
        context = self.phone_context()
        page = self.open_app(context)
        self.enroll(page)
        grid = self.core(page, "list_premises", False)[0]["grid_id"]
        self.assertTrue(grid)
        # New shops are due for a first visit: enough of them to pass a page.
        due = len(self.core(page, "due", int(time.time() * 1000)))
        for n in range(60 - min(due, 60) + 5):
            self.core(page, "add_premises", {
                "name": f"新开小店 {n}", "address": f"幸福路 {100 + n} 号", "kind": "retail",
                "gas_use": "none", "grid_id": grid})
        due = len(self.core(page, "due", int(time.time() * 1000)))
        self.assertGreater(due, 55)
        page.goto(self.url + "/app/#/premises")
        page.goto(self.url + "/app/#/")
        expect(page.locator("h2").first).to_have_text(f"待办 ({due})")
        expect(page.locator(".due-item")).to_have_count(50)
        expect(page.locator("#due-more")).to_have_text(f"显示更多（还有 {due - 50} 项）")
        page.click("#due-more")
        expect(page.locator(".due-item")).to_have_count(min(due, 100))
        expect(page.locator("#due-more")).to_be_visible(visible=due > 100)

    def test_a_photo_of_a_shops_code_opens_the_shop(self):
        context = self.phone_context()
        page = self.open_app(context)
        self.enroll(page, "w05")
        shop = self.core(page, "list_premises", False)[0]
        # The shop's printed code (场所码), as the dashboard draws it for an admin.
        admin = self.browser.new_context()
        self.contexts.append(admin)
        login = admin.request.post(self.url + "/dash/login", headers={"Origin": self.url},
                                   data={"user": "admin", "password": demo_server.ADMIN_PASSWORD})
        self.assertTrue(login.ok, login.text())
        png = admin.request.get(self.url + f"/dash/premises/{shop['id']}/qr.png")
        self.assertEqual(png.headers["content-type"], "image/png")
        page.goto(self.url + "/app/#/scan")
        # Headless Chromium on Linux has no BarcodeDetector: the vendored decoder reads it.
        page.set_input_files("#scan-photo", files=[{
            "name": "code.png", "mimeType": "image/png", "buffer": png.body()}])
        expect(page.locator("h1")).to_have_text(shop["name"], timeout=LONG)
        # A photo without a code says so.
        page.goto(self.url + "/app/#/scan")
        page.set_input_files("#scan-photo", photo("Landscape_1.jpg"))
        expect(page.locator("#scan-status.error")).to_contain_text("没有找到场所码")

    def test_a_second_window_says_it_cannot_keep_records(self):
        context = self.phone_context(bypass_csp=False)  # the app runs under its own policy
        violations = []
        context.on("console", lambda m: violations.append(m.text)
                   if "Content Security Policy" in m.text else None)
        first = self.open_app(context)
        expect(first.locator("input[name=user]")).to_be_visible(timeout=LONG)
        # The database is one file that only one window may hold at a time.
        second = self.open_app(context)
        expect(second.locator("#storage-error")).to_be_visible(timeout=LONG)
        self.assertEqual(second.locator("input[name=user]").count(), 0,
                         "no form that would pretend to save")
        self.assertEqual(violations, [])


if __name__ == "__main__":
    unittest.main()
