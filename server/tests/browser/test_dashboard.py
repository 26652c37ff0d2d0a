"""The supervisors' dashboard in headless Chromium against a real server with the demo
district: sign in, the map shows hazards, a filter narrows them, a hazard's detail shows its
photos, exports download files that parse, and a supervisor's action reaches a phone (the
phone is the real core through the FFI). Run by scripts/browser-test."""

import csv
import datetime
import io
import json
import os
import re
import tempfile
import unittest
import zipfile

from playwright.sync_api import expect, sync_playwright

import demo_server

import xuncha as x

SERVER_BIN = os.environ["XUNCHA_SERVER_BIN"]
SHOTS = os.environ.get("XUNCHA_SCREENSHOTS", tempfile.gettempdir())
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DEMO = ("demo", "xuncha-demo")


def a_sunday_off(after):
    """The first Sunday from `after` that is not a swapped working day (调休) in the
    calendar the server ships."""
    path = os.path.join(os.path.dirname(__file__), "../../../schemas/calendar/cn.json")
    with open(path, encoding="utf-8") as f:
        years = json.load(f)["years"].values()
    working = {w["date"] for year in years for w in year.get("workdays", [])}
    day = after + datetime.timedelta(days=(6 - after.weekday()) % 7)
    while day.isoformat() in working:
        day += datetime.timedelta(days=7)
    return day


class Dashboard(unittest.TestCase):
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
        # Playwright's waiting helpers evaluate strings, which the page's Content Security
        # Policy forbids (the app itself never does); the policy is checked on its own below.
        self.context = self.browser.new_context(viewport={"width": 1400, "height": 860},
                                                accept_downloads=True, bypass_csp=True)
        self.page = self.context.new_page()
        # The page's own requests in flight (the base map's tiles are not counted: they come
        # and go as the map moves, so "network idle" would wait on them).
        self.page.add_init_script("""(() => {
            const fetch0 = window.fetch;
            window.__inflight = 0;
            window.fetch = (...args) => {
                window.__inflight += 1;
                return fetch0(...args).finally(() => { window.__inflight -= 1; });
            };
        })()""")
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: print("console:", m.text) if m.type == "error" else None)

    def tearDown(self):
        self.context.close()
        self.assertEqual(self.errors, [], "no script errors on the page")

    def settle(self):
        """Until the page's requests are answered and drawn."""
        self.page.wait_for_function("() => window.__inflight === 0")
        self.page.wait_for_timeout(200)

    def sign_in(self, user=DEMO[0], password=DEMO[1]):
        page = self.page
        page.goto(self.url + "/")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", password)
        page.click("#login-form button[type=submit]")

    def total(self):
        """The hazards the map reports for the current view and filters (after it loaded)."""
        self.page.wait_for_function("document.querySelector('#count').dataset.total !== undefined")
        return int(self.page.get_attribute("#count", "data-total"))

    def wait_for_new_total(self, old):
        self.page.wait_for_function(f"document.querySelector('#count').dataset.total !== '{old}'")
        return self.total()

    def test_the_page_forbids_foreign_scripts(self):
        response = self.page.goto(self.url + "/")
        policy = response.headers["content-security-policy"]
        self.assertIn("default-src 'self'", policy)
        self.assertNotIn("unsafe-eval", policy)

    def test_sign_in_map_markers_and_a_filter(self):
        self.sign_in("demo", "wrong password")
        expect(self.page.locator("#login-error")).to_contain_text("用户名或密码错误")
        self.page.fill("input[name=password]", DEMO[1])
        self.page.click("#login-form button[type=submit]")
        expect(self.page.locator("#who")).to_contain_text("demo")
        total = self.total()
        self.assertGreater(total, 100, "the demo district has open hazards")
        drawn = self.page.locator(".hazard-marker, .server-cluster")
        expect(drawn.first).to_be_visible()
        self.assertGreater(drawn.count(), 10)
        expect(self.page.locator("#count")).to_contain_text(str(total))
        self.page.wait_for_timeout(500)  # let the grid outlines and markers settle
        self.page.screenshot(path=os.path.join(SHOTS, "map.png"))
        # Groups show their hazards by state (a ring of shares), not the colour of the worst.
        rings = self.page.evaluate("""[...document.querySelectorAll('.server-cluster .ring')]
            .map((e) => [e.getAttribute('style'), e.getAttribute('title')])""")
        self.assertTrue(rings, "the demo's map has groups")
        self.assertTrue(any(style.count("deg") >= 4 for style, _ in rings),
                        f"some group mixes states: {rings[:3]}")
        self.assertTrue(all(title for _, title in rings), rings[:3])
        # Grid names are drawn on the grids.
        self.assertEqual(self.page.locator(".grid-label").count(), 12)
        expect(self.page.locator(".grid-label").first).to_contain_text("网格")
        # The base map's credit is the operator's, as text.
        expect(self.page.locator(".leaflet-control-attribution")).to_contain_text(
            demo_server.TILE_ATTRIBUTION)
        # The base map and, over it, the street names served apart (as 天地图 does).
        self.page.wait_for_function("""() => ['base', 'labels'].every((layer) =>
            [...document.querySelectorAll('.leaflet-tile-pane img')]
              .some((i) => i.src.includes('/' + layer + '/') && i.complete && i.naturalWidth === 256))""")

        # Only overdue ones: fewer, but some.
        self.page.check("#f-overdue")
        overdue = self.wait_for_new_total(total)
        self.assertTrue(0 < overdue < total, (overdue, total))
        # One checklist among those: fewer again.
        for kind in ("gas_alarm", "e_bike", "exits"):
            self.page.uncheck(f"input[name=kind][value={kind}]")
        extinguishers = self.wait_for_new_total(overdue)
        self.assertLess(extinguishers, overdue)

        # English with one click.
        self.page.click("header [data-lang-toggle]")
        expect(self.page.locator("nav [data-tab=map]")).to_have_text("Hazard map")

        # Groups and markers are reachable by keyboard: Enter on a group zooms in, Enter on
        # a marker opens its hazard.
        group = self.page.locator(".server-cluster").first
        group.focus()
        zoom = self.page.evaluate("map.getZoom()")
        self.page.keyboard.press("Enter")
        self.page.wait_for_function("(z) => map.getZoom() > z", arg=zoom)
        self.page.evaluate("""fetch('/dash/api/overdue?' + filterQuery()).then((r) => r.json())
            .then((o) => fetch('/dash/api/hazards/' + o.items[0].id)).then((r) => r.json())
            .then((d) => { map.setView([d.map_position.lat, d.map_position.lon], 19); })""")
        marker = self.page.locator(".hazard-marker[data-hazard]").first
        expect(marker).to_have_attribute("tabindex", "0")
        hazard = marker.get_attribute("data-hazard")
        self.assertTrue(marker.get_attribute("aria-label"))
        marker.focus()
        self.page.keyboard.press("Enter")
        expect(self.page.locator("#detail")).to_be_visible()
        self.assertEqual(self.page.get_attribute("#detail", "data-hazard"), hazard)

    def test_the_heat_map_shows_the_same_hazards_instead_of_markers(self):
        self.sign_in()
        self.total()
        drawn = self.page.locator(".hazard-marker, .server-cluster")
        expect(drawn.first).to_be_visible()
        self.page.check("#f-heat")
        expect(self.page.locator("canvas.leaflet-heatmap-layer")).to_have_count(1)
        expect(drawn).to_have_count(0)
        # The canvas is painted where the hazards are (non-transparent pixels).
        self.page.wait_for_function("""() => {
            const c = document.querySelector('canvas.leaflet-heatmap-layer');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let painted = 0;
            for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
            return painted > 1000;
        }""")
        self.page.screenshot(path=os.path.join(SHOTS, "heat.png"))
        # Filters apply to it too, and markers come back when it is off.
        self.page.uncheck("#f-heat")
        expect(self.page.locator("canvas.leaflet-heatmap-layer")).to_have_count(0)
        expect(drawn.first).to_be_visible()

    def test_a_grids_premises_qr_codes_print_on_one_sheet(self):
        self.sign_in()
        self.total()
        sheet_link = self.page.locator("#qr-sheet")
        expect(sheet_link).to_be_hidden()
        self.page.select_option("#f-grid", "XF-01")
        expect(sheet_link).to_be_visible()
        self.assertEqual(sheet_link.get_attribute("href"), "/dash/qr?grid=XF-01")
        self.page.goto(self.url + "/dash/qr?grid=XF-01")
        codes = self.page.locator("figure img")
        self.assertEqual(codes.count(), 50, "the demo has 50 shops per grid")
        # The codes load (the session cookie is sent) and are drawn.
        self.page.wait_for_function("""() => [...document.querySelectorAll('figure img')]
            .every((i) => i.complete && i.naturalWidth >= 300)""")
        self.page.screenshot(path=os.path.join(SHOTS, "qr-sheet.png"))

    def test_a_hazards_detail_shows_its_photos_history_and_proximity(self):
        self.sign_in()
        self.total()
        self.page.click("nav [data-tab=work]")
        rows = self.page.locator("#overdue-table tr[data-id]")
        expect(rows.first).to_be_visible()
        # An overdue hazard whose finding needs a photo (FE-03: pressure gauge).
        ids = self.page.evaluate("""async () => {
            const list = await api('/dash/api/overdue');
            return list.items.filter(i => ['FE-03', 'EB-02', 'EB-04', 'EX-02', 'GA-01'].includes(i.code)).map(i => i.id);
        }""")
        self.assertTrue(ids, "the demo has overdue hazards with photos")
        self.page.click(f"#overdue-table tr[data-id='{ids[0]}']")
        detail = self.page.locator("#detail")
        expect(detail.locator("#detail-title")).to_be_visible()
        photo = detail.locator("img.photo").first
        expect(photo).to_be_visible()
        self.page.wait_for_function("(() => { const i = document.querySelector('#detail img.photo'); return i && i.complete && i.naturalWidth > 0; })()")
        self.assertLessEqual(photo.evaluate("i => i.naturalWidth"), 320, "a thumbnail")
        expect(detail.locator(".history li").first).to_be_visible()
        expect(detail).to_contain_text("逾期")
        self.page.screenshot(path=os.path.join(SHOTS, "detail.png"))
        # Full size on click.
        photo.click()
        self.page.wait_for_function("(() => { const i = document.querySelector('#lightbox img'); return i.complete && i.naturalWidth > 320; })()")

    def download(self, link):
        with self.page.expect_download() as info:
            self.page.click(link)
        return open(info.value.path(), "rb").read()

    def test_exports_download_files_that_parse(self):
        self.sign_in()
        total = self.total()
        rows = list(csv.reader(io.StringIO(self.download("a[data-export=hazards][data-format=csv]").decode("utf-8-sig"))))
        self.assertEqual(rows[0][0], "隐患编号")
        self.assertEqual(len(rows) - 1, total, "every hazard the map shows")
        geo = json.loads(self.download("a[data-export=hazards][data-format=geojson]"))
        self.assertEqual(len(geo["features"]), total)
        self.assertEqual(geo["features"][0]["geometry"]["type"], "Point")
        book = zipfile.ZipFile(io.BytesIO(self.download("a[data-export=inspections][data-format=xlsx]")))
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        self.assertGreater(sheet.count("<row "), 1800, "header and the six weeks of inspections")

    def test_an_admin_imports_premises_and_sees_users(self):
        self.sign_in("admin", "admin-password-browser")
        self.total()
        self.page.click("nav [data-tab=admin]")
        expect(self.page.locator("#users-table")).to_contain_text("w01")
        csv_file = "名称,地址,类型,网格,纬度,经度\n浏览器测试店,幸福路999号,零售,XF-01,31.2230,121.4580\n".encode()
        self.page.set_input_files("#premises-file", files=[{"name": "premises.csv", "mimeType": "text/csv", "buffer": csv_file}])
        expect(self.page.locator("#import-result")).to_contain_text("新增 1 个，更新 0 个")
        # The same file again, GBK as Chinese Excel saves it: updated in place, not doubled.
        self.page.set_input_files("#premises-file", files=[{"name": "premises.csv", "mimeType": "text/csv", "buffer": csv_file.decode().encode("gbk")}])
        expect(self.page.locator("#import-result")).to_contain_text("新增 0 个，更新 0 个，未变 1 个")
        # The template is offered.
        expect(self.page.locator("a[href='/v1/admin/premises/template.csv']")).to_be_visible()
        bad = "名称,地址\n缺列的店,某路1号\n".encode()
        self.page.set_input_files("#premises-file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}])
        expect(self.page.locator("#import-result.error")).to_contain_text("导入文件有误")
        # A worker's grids, edited in place.
        field = self.page.locator("input[data-user=w02]")
        field.fill("XF-02, XF-03")
        field.locator("xpath=..").locator("button").click()
        expect(field).to_have_class("saved")
        users = self.page.evaluate("api('/v1/admin/users')")
        [w02] = [u for u in users["users"] if u["id"] == "w02"]
        self.assertEqual(sorted(w02["grids"]), ["XF-02", "XF-03"])
        # A forgotten password, reset by the admin: the old one no longer signs in.
        self.page.once("dialog", lambda d: d.accept("a-new-password-w03"))
        self.page.locator("#users-table tr[data-user=w03] button.reset-password").click()
        expect(self.page.locator("#import-result")).to_contain_text("w03 的密码已重置")
        old = self.page.evaluate("""fetch('/dash/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({user: 'w03', password: 'xuncha-demo'})}).then((r) => r.status)""")
        self.assertEqual(old, 401)

    def test_an_admin_imports_users_from_excel_and_hands_out_their_first_passwords(self):
        self.sign_in("admin", "admin-password-browser")
        self.total()
        self.page.click("nav [data-tab=admin]")
        expect(self.page.locator("a[href='/v1/admin/users/template.csv']")).to_be_visible()
        # GBK, as Chinese Excel saves CSV; one first password given, one left to be made.
        users = ("用户名,姓名,角色,网格,社区,电话,初始密码\n"
                 "w21,赵新,网格员,XF-01、XF-02,,13800000021,\n"
                 "l21,钱社长,网格长,,幸福社区,13800000022,a-given-password\n").encode("gbk")
        self.page.set_input_files("#users-file", files=[{"name": "users.csv", "mimeType": "text/csv", "buffer": users}])
        expect(self.page.locator("#users-import-result")).to_contain_text("新增 2 个，更新 0 个")
        # The made password is shown once, with a file to hand it out, and it signs in.
        made = self.page.locator("#made-passwords")
        expect(made).to_be_visible()
        expect(made.locator("tr")).to_have_count(2)  # header and w21
        password = made.locator("td.password").inner_text()
        with self.page.expect_download() as download:
            self.page.click("#made-passwords-csv")
        sheet = open(download.value.path(), encoding="utf-8-sig").read()
        self.assertIn(f"w21,{password}", sheet)
        status = self.page.evaluate("""(p) => fetch('/v1/enroll', {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({user: 'w21', password: p, device_id: 'browser-w21'})}).then((r) => r.status)""", password)
        self.assertEqual(status, 200)
        # The list names them, with their phones.
        expect(self.page.locator("#users-table tr[data-user=w21]")).to_contain_text("赵新")
        expect(self.page.locator("#users-table tr[data-user=w21]")).to_contain_text("13800000021")
        # A file with a mistake creates nobody and says where.
        bad = "用户名,角色,网格\nw22,网格员,XF-01\nw23,网格员,NOPE-99\n".encode()
        self.page.set_input_files("#users-file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}])
        expect(self.page.locator("#users-import-result.error")).to_contain_text("第 3 行：网格“NOPE-99”不存在")
        expect(self.page.locator("#users-table tr[data-user=w22]")).to_have_count(0)
        self.page.screenshot(path=os.path.join(SHOTS, "admin-users.png"), full_page=True)

    def test_an_admin_revokes_a_lost_phone_and_disables_a_worker(self):
        lost = x.Phone.open(os.path.join(self.tmp.name, "w11-lost.sqlite3"), self.url)
        lost.enroll("w11", DEMO[1], "lost phone")
        kept = x.Phone.open(os.path.join(self.tmp.name, "w11-kept.sqlite3"), self.url)
        kept.enroll("w11", DEMO[1], "new phone")
        lost.sync(None)
        self.page.on("dialog", lambda d: d.accept())
        self.sign_in("admin", "admin-password-browser")
        self.total()
        self.page.click("nav [data-tab=admin]")
        row = self.page.locator("#users-table tr[data-user=w11]")
        row.locator("button.show-devices").click()
        device = row.locator(f"li[data-device='{lost.device_id()}']")
        expect(device).to_contain_text("lost phone")
        device.locator("button.revoke").click()
        expect(device).to_contain_text("已吊销")
        with self.assertRaises(x.XunchaError.Server) as caught:
            lost.sync(None)
        self.assertEqual(caught.exception.status, 401)
        kept.sync(None)  # the other phone goes on

        row.locator("button.disable").click()
        expect(self.page.locator("#users-table tr[data-user=w11] .state")).to_have_text("已停用")
        with self.assertRaises(x.XunchaError.Server) as caught:
            kept.sync(None)
        self.assertEqual(caught.exception.status, 401)
        self.page.screenshot(path=os.path.join(SHOTS, "admin-accounts.png"))

    def test_grid_names_are_shown_as_text_not_html(self):
        self.sign_in("admin", "admin-password-browser")
        self.total()
        name = "<b>粗体</b><img src=x>新华四网格"
        self.page.evaluate("""(name) => api('/v1/admin/grids/XH-04', { method: 'PUT',
            json: { name, community: '新华社区', subdistrict: '幸福街道' } })""", name)
        self.page.reload()
        self.total()
        opened = self.page.evaluate("""() => { let found = false;
            gridLayer.eachLayer((l) => { if (l.feature.properties.id === 'XH-04') { l.openTooltip(l.getCenter()); found = true; } });
            return found; }""")
        self.assertTrue(opened, "grid XH-04 is drawn")
        tooltip = self.page.locator(".leaflet-tooltip", has_text="新华四网格")
        expect(tooltip).to_contain_text("<b>粗体</b><img src=x>")
        self.assertEqual(tooltip.locator("b, img").count(), 0, "no markup from the name")

    def test_an_admin_replaces_a_provisional_calendar(self):
        self.sign_in("admin", "admin-password-browser")
        self.total()
        self.page.click("nav [data-tab=admin]")
        year = int(self.page.evaluate("api('/v1/status')")["calendar"][1]["year"])
        shipped = self.page.locator(f"#calendar-status li[data-year='{year}']")
        if year == 2027:
            expect(shipped).to_have_attribute("data-status", "provisional")
            expect(shipped).to_contain_text("暂定")
        # The State Council's notice is out: the admin uploads next year's official days.
        calendar = self.page.evaluate("api('/v1/reference')")["calendar"]
        calendar["years"][str(year)] = {
            "notice": "browser test",
            "holidays": [{"name": "元旦", "from": f"{year}-01-01", "to": f"{year}-01-01"}],
            "workdays": [],
        }
        self.page.set_input_files("#calendar-file", files=[{
            "name": "cn.json", "mimeType": "application/json",
            "buffer": json.dumps(calendar, ensure_ascii=False).encode()}])
        expect(self.page.locator("#calendar-result")).to_contain_text("日历已更新")
        expect(shipped).to_have_attribute("data-status", "official")
        expect(shipped).to_contain_text("正式")
        # A file that is not a calendar is refused and changes nothing.
        calendar["format"] = "something else"
        self.page.set_input_files("#calendar-file", files=[{
            "name": "bad.json", "mimeType": "application/json",
            "buffer": json.dumps(calendar).encode()}])
        expect(self.page.locator("#calendar-result.error")).to_contain_text("日历文件格式不正确")
        expect(shipped).to_have_attribute("data-status", "official")

    def test_everything_about_a_shop_in_three_clicks(self):
        self.sign_in()
        self.total()
        # 1: the shops tab; 2: search; 3: the shop.
        self.page.click("nav [data-tab=shops]")
        self.page.fill("#shop-search", "店")
        self.page.press("#shop-search", "Enter")
        rows = self.page.locator("#shop-results tr.shop-row")
        expect(rows.first).to_be_visible()
        # The shop with the most open hazards, to see them all.
        counts = [int(c) for c in self.page.locator("#shop-results tr.shop-row td.num").all_inner_texts()]
        rows.nth(counts.index(max(counts))).click()
        shop = self.page.locator("#shop-file")
        expect(shop.locator("#shop-name")).to_be_visible()
        expect(shop.locator("#shop-qr")).to_be_visible()
        # The QR code loads.
        self.page.wait_for_function(
            "document.querySelector('#shop-qr').complete"
            " && document.querySelector('#shop-qr').naturalWidth > 0")
        self.assertGreater(shop.locator("details.visit").count(), 0, "its visits")
        self.assertGreaterEqual(shop.locator("#shop-hazards tr").count(), max(counts),
                                "its hazards, open and closed")
        shop.locator("details.visit summary").first.click()
        expect(shop.locator("details.visit[open] table.answers tr").first).to_be_visible()
        self.page.screenshot(path=os.path.join(SHOTS, "shop-file.png"), full_page=True)
        # From a hazard of the shop to its review pane, and back to the file from there.
        self.assertGreater(max(counts), 0, "the demo has shops with open hazards")
        shop.locator("#shop-hazards tr").first.click()
        expect(self.page.locator("#detail #open-shop")).to_be_visible()
        self.page.click("#detail #open-shop")
        expect(self.page.locator("#shop-name")).to_be_visible()

    def test_what_a_worker_did_in_a_period(self):
        self.sign_in()
        self.total()
        self.page.click("nav [data-tab=people]")
        rows = self.page.locator("#people-table tr.person-row")
        expect(rows.first).to_be_visible()
        self.assertGreaterEqual(rows.count(), 11, "the demo's workers (one may be disabled by another test)")
        # The last two months, then one worker.
        since = (datetime.date.today() - datetime.timedelta(days=60)).isoformat()
        self.page.fill("#ppl-from", since)
        self.page.dispatch_event("#ppl-from", "change")
        w01 = self.page.locator("#people-table tr.person-row[data-id=w01]")
        expect(w01.locator("td").nth(1)).not_to_have_text("0")
        w01.click()
        expect(self.page.locator("#person-name")).to_contain_text(since)
        self.assertGreater(self.page.locator("#person-visits tr").count(), 0)
        self.page.screenshot(path=os.path.join(SHOTS, "people.png"), full_page=True)
        # A visit opens its shop's file.
        self.page.locator("#person-visits tr").first.click()
        expect(self.page.locator("#shop-name")).to_be_visible()

    def test_every_tab_works_on_a_phone(self):
        phone = self.browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                         has_touch=True, device_scale_factor=2)
        page = phone.new_page()
        try:
            page.goto(self.url + "/")
            page.fill("input[name=user]", DEMO[0])
            page.fill("input[name=password]", DEMO[1])
            page.click("#login-form button[type=submit]")
            expect(page.locator("#who")).not_to_be_empty()
            for tab in ["map", "work", "shops", "people", "campaigns", "figures", "admin"]:
                button = page.locator(f"nav [data-tab={tab}]")
                if not button.is_visible():
                    continue  # the admin tab, for admins only
                button.click()
                page.wait_for_timeout(400)
                # The header stays a header: the title on one line, the tabs reachable.
                box = page.locator("header").bounding_box()
                self.assertLess(box["height"], 110, f"{tab}: the header wraps ({box})")
                title = page.locator("header strong").bounding_box()
                self.assertLess(title["height"], 30, f"{tab}: the title breaks into lines")
                # Nothing makes the page wider than the phone (tables scroll on their own).
                width = page.evaluate("document.documentElement.scrollWidth")
                self.assertLessEqual(width, 390, f"{tab}: the page is {width} px wide")
                page.screenshot(path=os.path.join(SHOTS, f"phone-{tab}.png"))
            # The map's filters, exports and legend are there on a phone too.
            page.click("nav [data-tab=map]")
            for part in ["#f-overdue", "a[data-export]", ".legend"]:
                page.locator(part).first.scroll_into_view_if_needed()
                expect(page.locator(part).first).to_be_visible()
        finally:
            phone.close()

    def test_an_expired_session_says_so_and_returns_to_where_the_user_was(self):
        self.sign_in()
        self.total()
        self.page.click("nav [data-tab=shops]")
        self.page.fill("#shop-search", "店")
        self.page.press("#shop-search", "Enter")
        self.page.locator("#shop-results tr.shop-row").first.click()
        name = self.page.locator("#shop-name").inner_text()
        # The session ends (expired, or signed out elsewhere); the next request finds out.
        self.context.clear_cookies()
        self.page.click("nav [data-tab=work]")
        expect(self.page.locator("#login-error")).to_contain_text("登录已过期")
        self.page.fill("input[name=user]", DEMO[0])
        self.page.fill("input[name=password]", DEMO[1])
        self.page.click("#login-form button[type=submit]")
        # Back on the tab it was going to, with the shop still open there.
        expect(self.page.locator("#tab-work")).to_be_visible()
        self.page.click("nav [data-tab=shops]")
        expect(self.page.locator("#shop-name")).to_have_text(name)

    def test_work_lists_and_figures_draw_their_charts(self):
        self.sign_in()
        self.total()
        self.page.click("nav [data-tab=work]")
        expect(self.page.locator("#overdue-by-grid svg rect").first).to_be_visible()
        expect(self.page.locator("#due-table tr").nth(1)).to_be_visible()
        # Names, not codes: grids and checklist items as people call them.
        first = self.page.locator("#overdue-table tr").nth(1).locator("td")
        expect(first.nth(1)).to_contain_text("网格")
        self.assertIsNone(re.fullmatch(r"[A-Z]{2}-\d{2}( ⚠)?", first.nth(2).inner_text()),
                          first.nth(2).inner_text())
        self.assertNotRegex(" ".join(self.page.locator("#overdue-by-grid text").all_text_contents()),
                            r"\b[A-Z]{2}-\d{2}\b")
        # Sortable and paged: 50 a page, most overdue first; a header sorts, twice reverses.
        rows = self.page.locator("#overdue-table tr.clickable")
        expect(rows).to_have_count(50)
        days = [int(r.locator("td").nth(4).inner_text()) for r in rows.all()]
        self.assertEqual(days, sorted(days, reverse=True))
        expect(self.page.locator("#overdue-page")).to_contain_text("第 1 /")
        self.page.screenshot(path=os.path.join(SHOTS, "work.png"), full_page=True)
        self.page.click("#overdue-next")
        expect(self.page.locator("#overdue-page")).to_contain_text("第 2 /")
        self.assertLessEqual(int(rows.first.locator("td").nth(4).inner_text()), days[-1])
        self.page.click("#overdue-table button[data-sort=deadline]")
        expect(self.page.locator("#overdue-table th[aria-sort=ascending]")).to_contain_text("整改期限")
        expect(self.page.locator("#overdue-page")).to_contain_text("第 1 /")
        deadlines = [r.locator("td").nth(3).inner_text() for r in rows.all()]
        self.assertEqual(deadlines, sorted(deadlines))
        self.page.click("#overdue-table button[data-sort=deadline]")
        expect(self.page.locator("#overdue-table th[aria-sort=descending]")).to_contain_text("整改期限")
        latest = [r.locator("td").nth(3).inner_text() for r in rows.all()]
        self.assertEqual(latest, sorted(latest, reverse=True))
        # Exports in the page's language.
        self.assertIn("lang=zh", self.page.get_attribute("a[data-export]", "href"))
        # A filter set on the map is said on the work lists too, as a chip that turns it off.
        expect(self.page.locator("#work-chips")).to_be_hidden()
        self.page.click("nav [data-tab=map]")
        self.page.check("#f-overdue")
        expect(self.page.locator("#map-chips .chip")).to_have_text(["仅看逾期 ×"])
        self.page.click("nav [data-tab=work]")
        chip = self.page.locator("#work-chips .chip")
        expect(chip).to_have_text(["仅看逾期 ×"])
        chip.click()
        expect(self.page.locator("#work-chips")).to_be_hidden()
        self.assertFalse(self.page.is_checked("#f-overdue"))
        # A hazard opened from a list: the map moves to it.
        row = self.page.locator("#overdue-table tr.clickable").first
        hazard = row.get_attribute("data-id")
        row.click()
        expect(self.page.locator("#detail-title")).to_be_visible()
        where = self.page.evaluate(
            "(id) => fetch('/dash/api/hazards/' + id).then((r) => r.json()).then((d) => d.map_position)",
            hazard)
        self.page.wait_for_function(
            "([lat, lon]) => map.getZoom() >= 17 && map.getBounds().contains([lat, lon])",
            arg=[where["lat"], where["lon"]])
        self.page.click("nav [data-tab=figures]")
        expect(self.page.locator("#figures-table tr").nth(12)).to_be_visible()  # header + 12 grids
        self.assertGreater(self.page.locator("#chart-open svg rect").count(), 12)
        self.page.select_option("#fig-group", "by_community")
        expect(self.page.locator("#figures-table")).to_contain_text("和平社区")
        self.assertEqual(self.page.locator("#figures-table tr").count(), 4, "header + 3 communities")
        # Week by week: new, closed and overdue, twelve weeks; the demo's six weeks of work show.
        self.assertEqual(self.page.locator("#chart-trend polyline").count(), 3)
        self.assertEqual(self.page.locator("#chart-trend circle").count(), 36)
        self.assertTrue(any(float(c.get_attribute("cy")) < 150
                            for c in self.page.locator("#chart-trend circle").all()),
                        "some week has hazards")
        # Closed by the deadline and how long it took, not a median of 0 days.
        expect(self.page.locator("#chart-rate")).to_contain_text("按期")
        self.page.screenshot(path=os.path.join(SHOTS, "figures.png"), full_page=True)
        # No chart text is cut off: every label and figure lies inside its chart.
        for chart in ["#chart-done", "#chart-open", "#chart-rate"]:
            svg = self.page.locator(f"{chart} svg").bounding_box()
            for text in self.page.locator(f"{chart} svg text").all():
                box = text.bounding_box()
                self.assertGreaterEqual(box["x"], svg["x"] - 0.5, text.text_content())
                self.assertLessEqual(box["x"] + box["width"], svg["x"] + svg["width"] + 0.5,
                                     f"{chart}: {text.text_content()}")
        # Per worker.
        self.page.select_option("#fig-group", "by_worker")
        expect(self.page.locator("#chart-done-caption")).to_have_text("检查次数与发现隐患")
        expect(self.page.locator("#figures-table tr").nth(11)).to_be_visible()  # header + workers
        expect(self.page.locator("#chart-open")).to_be_hidden()

    def test_a_campaign_set_up_on_the_dashboard_reaches_the_phones_due_list(self):
        self.sign_in()
        self.total()
        self.page.click("nav [data-tab=campaigns]")
        self.page.click("#campaign-new summary")
        deadline = (datetime.date.today() + datetime.timedelta(days=14)).isoformat()
        self.page.fill("#campaign-form input[name=name]", "冬季电动车充电专项检查")
        self.page.fill("#campaign-form input[name=deadline]", deadline)
        # Without a checklist it says so and sends nothing.
        self.page.click("#campaign-form button[type=submit]")
        expect(self.page.locator("#campaign-error")).to_have_text("请至少选择一类检查")
        self.page.check("#cf-kinds input[value=e_bike]")
        for grid in self.page.locator("#cf-grids input").all():
            grid.check()
        self.page.click("#campaign-form button[type=submit]")
        expect(self.page.locator("#campaign-title")).to_contain_text("冬季电动车充电专项检查")
        row = self.page.locator("#campaign-table tr.campaign-row").first
        expect(row).to_contain_text("进行中")
        self.assertGreater(self.page.locator("#campaign-grids tr").count(), 1)
        self.assertGreater(self.page.locator("#campaign-shops tr").count(), 1)
        expect(self.page.locator("#campaign-progress svg")).to_be_visible()
        self.page.screenshot(path=os.path.join(SHOTS, "campaigns.png"), full_page=True)

        # The worker's phone lists the campaign's shops at its next sync.
        phone = x.Phone.open(os.path.join(self.tmp.name, "w02-campaign.sqlite3"), self.url)
        phone.enroll("w02", DEMO[1], "browser test campaign")
        phone.sync(None)
        now = int(datetime.datetime.now().timestamp() * 1000)
        tasks = [d for d in phone.due(now) if d.campaign is not None]
        self.assertTrue(tasks, "the campaign's shops are on the phone's due list")
        self.assertEqual(tasks[0].campaign.name, "冬季电动车充电专项检查")
        self.assertEqual(tasks[0].due_on, deadline)

        # The export downloads, and ending it asks first.
        link = "#campaign a[href*='export.csv']"
        rows = list(csv.reader(io.StringIO(self.download(link).decode("utf-8-sig"))))
        self.assertEqual(rows[0][0], "专项行动")
        self.assertGreater(len(rows), 1)
        self.page.once("dialog", lambda d: d.accept())
        self.page.click("#campaign-end")
        expect(row).to_contain_text("已结束")
        phone.sync(None)
        self.assertFalse([d for d in phone.due(now) if d.campaign is not None])

    # For every visible element with text of its own: its colour against the first opaque
    # background behind it (WCAG 2 relative luminance); for every visible control: a name
    # (label, aria-label or its text).
    A11Y_PROBE = r"""() => {
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = ({ r, g, b }) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden' && !el.closest('[hidden]'); };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!visible(el) || el.closest('#map .leaflet-tile-pane, svg')) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const fg = parse(getComputedStyle(el).color); const bg = bgOf(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 20)}" ${ratio.toFixed(2)} ${getComputedStyle(el).color} on ${JSON.stringify(bg)}`);
  }
  const unnamed = [];
  for (const el of document.querySelectorAll('input, select, textarea, button')) {
    if (!visible(el) || el.type === 'hidden') continue;
    const name = el.getAttribute('aria-label') || (el.labels && [...el.labels].map((l) => l.textContent.trim()).join('')) || (el.tagName === 'BUTTON' && el.textContent.trim()) || el.title;
    if (!name) unnamed.push(`${el.tagName}#${el.id}.${el.className}[name=${el.name}]`);
  }
  return { low: [...new Set(low)], unnamed };
}"""

    def assert_readable_and_labelled(self, where):
        found = self.page.evaluate(self.A11Y_PROBE)
        self.assertEqual(found["low"], [], f"{where}: text below 4.5:1 contrast")
        self.assertEqual(found["unnamed"], [], f"{where}: controls without a name")

    def test_every_control_has_a_name_and_text_contrast_is_at_least_4_5(self):
        self.page.goto(self.url + "/")
        self.assert_readable_and_labelled("sign-in")
        self.sign_in("admin", demo_server.ADMIN_PASSWORD)
        self.total()
        hazard = self.page.evaluate("fetch('/dash/api/overdue').then((r) => r.json()).then((o) => o.items[0].id)")
        self.page.evaluate(f"location.hash = 'hazard={hazard}'")
        expect(self.page.locator("#detail #extend")).to_be_visible()
        self.assert_readable_and_labelled("map with a hazard open")
        self.page.click("#extend")
        expect(self.page.locator("#action-dialog")).to_be_visible()
        self.assert_readable_and_labelled("the extension dialog")
        self.page.click("#action-cancel")
        for tab in ["work", "shops", "people", "campaigns", "figures", "admin"]:
            self.page.click(f"nav [data-tab={tab}]")
            self.settle()
            if tab == "shops":
                self.page.fill("#shop-search", "店")
                self.page.press("#shop-search", "Enter")
                self.page.locator("#shop-results tr.shop-row").first.click()
                expect(self.page.locator("#shop-name")).to_be_visible()
            if tab == "people":
                self.page.locator("#people-table tr.person-row").first.click()
                expect(self.page.locator("#person-name")).to_be_visible()
            self.assert_readable_and_labelled(tab)

    def test_a_supervisors_action_reaches_a_phone(self):
        phone = x.Phone.open(os.path.join(self.tmp.name, "w01.sqlite3"), self.url)
        phone.enroll("w01", DEMO[1], "browser test")
        phone.sync(None)
        rectifying = [h for h in phone.open_hazards() if h.status == x.HazardStatus.RECTIFYING]
        self.assertTrue(rectifying, "worker w01 has hazards under rectification")
        hazard = rectifying[0]

        self.sign_in()
        self.total()
        self.page.evaluate(f"location.hash = 'hazard={hazard.id}'")
        detail = self.page.locator("#detail")
        expect(detail.locator("#extend")).to_be_visible()
        # The action asks first, and takes a reason.
        self.page.click("#extend")
        dialog = self.page.locator("#action-dialog")
        expect(dialog).to_be_visible()
        self.assertGreater(self.page.get_attribute("#action-date", "min"),
                           datetime.date.today().isoformat(), "only dates after today")
        # Working days offered (the server counts them); a Sunday typed in is refused.
        sunday = a_sunday_off(datetime.date.today() + datetime.timedelta(days=7))
        self.page.fill("#action-date", sunday.isoformat())
        self.page.fill("#action-reason", "店主申请，配件在途")
        self.page.click("#action-confirm")
        expect(dialog.locator("#action-error")).to_contain_text("不是工作日")
        self.page.fill("#action-reason", "")
        choice = self.page.locator("#action-choices button").nth(2)
        self.assertIn("个工作日后", choice.inner_text())
        new_deadline = choice.get_attribute("data-date")
        choice.click()
        self.page.click("#action-confirm")
        expect(dialog.locator("#action-error")).to_have_text("请填写理由")
        self.page.fill("#action-reason", "店主申请，配件在途")
        self.page.click("#action-confirm")
        expect(dialog).to_have_count(0)
        expect(detail.locator(".ok")).to_be_visible()
        expect(detail).to_contain_text(new_deadline)
        expect(detail.locator(".history")).to_contain_text("店主申请，配件在途")
        # People by name; the printed notice is offered only once issued.
        expect(detail.locator("#detail-assignee")).not_to_have_text("w01")
        self.assertEqual(detail.locator("#print-notice").count(), 1 if hazard.notice_no else 0)

        # Reassigning offers only the people who cover the shop's grid, by name.
        self.page.click("#reassign")
        expect(self.page.locator("#action-dialog")).to_be_visible()
        options = self.page.locator("#action-assignee option").all_inner_texts()
        self.assertTrue(options, "someone else covers the grid")
        self.assertTrue(all("（" in o for o in options), options)
        self.page.click("#action-cancel")
        expect(self.page.locator("#action-dialog")).to_have_count(0)

        # Chasing (催办): asked, explained, in the history; the worker's phone gets it.
        self.page.click("#urge")
        self.page.fill("#action-reason", "请本周内完成整改")
        self.page.click("#action-confirm")
        expect(detail.locator(".history")).to_contain_text("催办")

        phone.sync(None)
        [after] = [h for h in phone.open_hazards() if h.id == hazard.id]
        self.assertEqual(after.deadline, new_deadline)
        history = phone.hazard_history(hazard.id)
        self.assertEqual((history[-1].action, history[-1].note), ("urged", "请本周内完成整改"))


if __name__ == "__main__":
    unittest.main()
