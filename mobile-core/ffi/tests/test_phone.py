"""The phone workflow through the generated Python bindings and the real C ABI, against a live
server on loopback. Run by scripts/ffi-test (which builds the library, generates the bindings
and points XUNCHA_SERVER_BIN at the server binary)."""

import copy
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import xuncha as x

SERVER_BIN = os.environ["XUNCHA_SERVER_BIN"]
ADMIN_PASSWORD = "admin-password-ffi"
PASSWORD = "worker-password"


class Server:
    """A real xuncha-server process with a fresh data directory."""

    def __init__(self, data_dir):
        # Warnings only: not a line per request in the test output.
        env = dict(os.environ, XUNCHA_ADMIN_PASSWORD=ADMIN_PASSWORD, XUNCHA_LOG_LEVEL="warn")
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--data", data_dir, "--listen", "127.0.0.1:0"],
            env=env, stdout=subprocess.PIPE, text=True)
        for line in self.proc.stdout:
            if "http://" in line:
                self.url = line[line.index("http://"):].strip().rstrip("/")
                break
        else:
            raise RuntimeError("server did not start")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.admin_token = self.call("POST", "/v1/enroll", {
            "user": "admin", "password": ADMIN_PASSWORD, "device_id": "py-admin"})["token"]

    def call(self, method, path, body=None, token=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("content-type", "application/json")
        if token or getattr(self, "admin_token", None):
            req.add_header("authorization", "Bearer " + (token or self.admin_token))
        with urllib.request.urlopen(req) as res:
            return json.loads(res.read())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def shop(name, grid="g1"):
    return x.PremisesFields(
        name=name, address="幸福路 8 号", kind=x.PremisesKind.CATERING, gas_use=x.GasUse.NONE,
        grid_id=grid, credit_code=None, licence_no=None, contact_person="王伟", phone=None, storeys=1,
        floor_area_m2=80.0, max_occupants=20, gas_supplier=None, sleeps_on_site=False,
        lat=31.23, lon=121.47)


def exits_answers(lighting_works):
    """A visit of the exits checklist; broken emergency lighting (EX-05) is a hazard."""
    def yes_no(code, value):
        return x.Answer(code=code, value=x.AnswerValue.YES_NO(value), detail=None, note=None, photos=[])
    return [
        yes_no("EX-01", False), yes_no("EX-02", False),
        x.Answer(code="EX-03", value=x.AnswerValue.COUNT(2), detail=None, note=None, photos=[]),
        yes_no("EX-04", False), yes_no("EX-05", lighting_works), yes_no("EX-06", True),
        x.Answer(code="EX-07", value=x.AnswerValue.CHOICE("no"), detail=None, note="无人住宿", photos=[]),
    ]


GEOTAG = x.Geotag(lat=31.2301, lon=121.4702, accuracy_m=8.0, source="gps", mock=False,
                  fix_time_ms=1795400000000)


class Progress(x.SyncListener):
    def __init__(self):
        self.seen = []

    def on_progress(self, progress):
        self.seen.append(progress)


class PhoneWorkflow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.server = Server(os.path.join(cls.tmp.name, "server"))
        cls.server.call("PUT", "/v1/admin/grids/g1", {"name": "幸福社区一网格", "community": "幸福社区"})
        for user in ("w1", "w2", "w3"):
            cls.server.call("POST", "/v1/admin/users", {
                "id": user, "role": "worker", "password": PASSWORD, "areas": {"grids": ["g1"]}})

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def phone(self, name, user, own_dir=False):
        """A phone enrolled as `user`; with `own_dir`, in a directory of its own (photos
        live beside the database, so phones that share a directory share photos)."""
        folder = os.path.join(self.tmp.name, name) if own_dir else self.tmp.name
        os.makedirs(folder, exist_ok=True)
        p = x.Phone.open(os.path.join(folder, name + ".sqlite3"), self.server.url)
        enrolment = p.enroll(user, PASSWORD, "pytest " + name)
        self.assertEqual((enrolment.user, enrolment.role, enrolment.grids), (user, "worker", ["g1"]))
        return p

    def test_an_inspection_on_one_phone_reaches_another(self):
        a = self.phone("a", "w1")
        items = a.checklist(x.ChecklistKind.EXITS)
        self.assertEqual([i.code for i in items], [f"EX-0{n}" for n in range(1, 8)])
        self.assertEqual(items[4].label_zh, "应急照明完好(按试验键)")

        premises = a.add_premises(shop("老王面馆"))
        # The shop's QR code (场所码, printed from the dashboard) opens it; other codes do not.
        self.assertEqual(a.premises_from_qr("xuncha://premises/" + premises.id).fields.name, "老王面馆")
        self.assertIsNone(a.premises_from_qr("https://qr.alipay.com/x"))
        self.assertIsNone(a.premises_from_qr("xuncha://premises/not-synced-here"))
        self.assertIn(x.ChecklistKind.FIRE_EXTINGUISHER, a.default_kinds(premises.id))
        inspection = a.record_inspection(x.InspectionDraft(
            premises_id=premises.id, kinds=[x.ChecklistKind.EXITS],
            answers=exits_answers(lighting_works=False), geotag=GEOTAG, note=None))
        self.assertEqual([f.code for f in inspection.findings], ["EX-05"])
        hazard_id = inspection.findings[0].hazard_id
        hazard = a.record_hazard_action(
            hazard_id, x.HazardAction.ISSUE_NOTICE(deadline="2099-12-01", notice_no=None), GEOTAG, None)
        self.assertEqual(hazard.status, x.HazardStatus.RECTIFYING)
        self.assertEqual(a.pending_count(), 3)

        # What is due: the re-check at the deadline comes first once it is overdue.
        now = int(time.time() * 1000)
        kinds = {(d.kind, d.hazard_id) for d in a.due(now)}
        self.assertIn((x.DueKind.ROUTINE, None), kinds, "the shop's weekly visit (open hazard)")
        late = a.due(4102444800000)  # 2100-01-01
        self.assertEqual((late[0].kind, late[0].hazard_id), (x.DueKind.RECHECK, hazard_id))
        self.assertGreater(late[0].overdue_days, 0)
        self.assertGreater(a.next_reminder_at(now), now)
        statuses = [a.calendar_status(y) for y in (2026, 2027, 2035)]
        self.assertEqual(statuses, [x.YearStatus.OFFICIAL, x.YearStatus.PROVISIONAL, x.YearStatus.UNKNOWN])

        progress = Progress()
        report = a.sync(progress)
        self.assertEqual((report.pushed, a.pending_count()), (3, 0))
        self.assertEqual(progress.seen[0].to_push, 3)
        self.assertEqual(progress.seen[-1].phase, x.SyncPhase.DONE)

        b = self.phone("b", "w2")
        b.sync(None)
        self.assertIn("老王面馆", [p.fields.name for p in b.list_premises(False)])
        [seen] = b.inspections_of(premises.id)
        self.assertEqual((seen.id, seen.inspector, seen.findings[0].code), (inspection.id, "w1", "EX-05"))
        [open_hazard] = [h for h in b.open_hazards() if h.id == hazard_id]
        self.assertEqual((open_hazard.status, open_hazard.deadline), (x.HazardStatus.RECTIFYING, "2099-12-01"))

        # The re-check happens on phone B; both phones end in the same state.
        b.record_hazard_action(hazard_id, x.HazardAction.OWNER_REPORTED_FIXED(), None, None)
        closed = b.record_hazard_action(hazard_id, x.HazardAction.RECHECK_PASSED(), GEOTAG, "已修复")
        self.assertEqual(closed.status, x.HazardStatus.CLOSED)
        b.sync(None)
        a.sync(None)
        self.assertNotIn(hazard_id, [h.id for h in a.open_hazards()])
        self.assertEqual(a.digest(), b.digest())

    def test_photos_upload_apart_from_sync_and_another_phone_fetches_them(self):
        a = self.phone("photo-a", "w1", own_dir=True)
        premises = a.add_premises(shop("照片测试店"))
        with open("../shared/testdata/exif-orientation/Portrait_4.jpg", "rb") as f:
            photo = a.add_photo(f.read(), [])
        answers = exits_answers(lighting_works=True)
        answers[1] = x.Answer(code="EX-02", value=x.AnswerValue.YES_NO(True), detail=None,
                              note=None, photos=[photo])
        a.record_inspection(x.InspectionDraft(premises_id=premises.id, kinds=[x.ChecklistKind.EXITS],
                                              answers=answers, geotag=GEOTAG, note=None))
        self.assertEqual(a.pending_photo_count(), 1)

        # The server takes a photo only once it holds the record: before sync it waits.
        early = a.upload_photos(None)
        self.assertEqual((early.waiting, early.uploaded, a.pending_photo_count()), (1, 0, 1))
        a.sync(None)

        class Seen(x.UploadListener):
            def __init__(self):
                self.calls = []

            def on_photo(self, done, total):
                self.calls.append((done, total))

        seen = Seen()
        report = a.upload_photos(seen)
        self.assertEqual((report.uploaded, report.refused, report.sent_bytes), (1, 0, photo.bytes))
        self.assertEqual((seen.calls, a.pending_photo_count()), ([(1, 1)], 0))

        # Another worker of the grid sees the record and fetches the photo for display.
        b = self.phone("photo-b", "w2", own_dir=True)
        b.sync(None)
        [inspection] = b.inspections_of(premises.id)
        [sha] = [p.sha256 for ans in inspection.answers for p in ans.photos]
        self.assertIsNone(b.photo_path(sha, False))
        full = b.fetch_photo(sha, False)
        with open(full, "rb") as got, open(a.photo_path(sha, False), "rb") as original:
            self.assertEqual(got.read(), original.read())
        self.assertTrue(os.path.getsize(b.fetch_photo(sha, True)) < photo.bytes / 4)
        self.assertEqual(b.photo_path(sha, False), full)
        with self.assertRaises(x.XunchaError.Invalid):
            b.fetch_photo("../../etc/passwd", False)

    def test_an_edit_writes_only_the_fields_changed(self):
        phone = self.phone("edit", "w1")
        fields = shop("老王面馆")
        fields.licence_no = "JY13101010012345"
        fields.gas_supplier = "上海燃气"
        p = phone.add_premises(fields)
        phone.archive_premises(p.id, True)
        shown = [q for q in phone.list_premises(True) if q.id == p.id][0].fields
        after = copy.copy(shown)
        after.name = "老王面馆（新店）"
        saved = phone.edit_premises(p.id, shown, after)
        self.assertEqual(saved.fields.name, "老王面馆（新店）")
        self.assertTrue(saved.archived, "editing an archived shop does not restore it")
        self.assertEqual(saved.fields.licence_no, "JY13101010012345")
        self.assertEqual(saved.fields.gas_supplier, "上海燃气")

    def test_a_change_refused_for_its_author_is_set_aside_and_listed(self):
        phone = self.phone("aside", "w1")
        phone.add_premises(shop("本网格小店"))
        phone.add_premises(shop("别的网格小店", grid="g9"))
        report = phone.sync(None)
        self.assertEqual((report.pushed, report.set_aside), (2, 1))
        [change] = phone.set_aside_changes()
        self.assertEqual((change.seq, change.kind, change.code), (2, "premises_patch", "out_of_scope"))
        self.assertIn("不在您的负责范围内", change.message)
        self.assertEqual(phone.pending_count(), 0)
        self.assertEqual([p.fields.name for p in phone.list_premises(False)], ["本网格小店"])

    def test_a_phone_days_ahead_is_held_and_does_not_move_the_others_clocks(self):
        class Clock(x.Clock):
            def __init__(self, offset_ms):
                self.offset_ms = offset_ms

            def now_ms(self):
                return int(time.time() * 1000) + self.offset_ms

        def phone(name, offset_ms):
            p = x.Phone.open_with_clock(
                os.path.join(self.tmp.name, name + ".sqlite3"), self.server.url, Clock(offset_ms))
            p.enroll("w3", PASSWORD, None)
            return p

        fast = phone("fast", 72 * 3600 * 1000)
        fast.add_premises(shop("钟快的店"))
        report = fast.sync(None)
        self.assertEqual(report.quarantined, 1)
        self.assertGreater(report.server_clock_offset_ms, -73 * 3600 * 1000)
        self.server.call("POST", "/v1/admin/quarantine/release", None)
        right = phone("right", 0)
        right.sync(None)
        right.add_premises(shop("钟准的店"))
        report = right.sync(None)
        self.assertEqual((report.pushed, report.quarantined), (1, 0))

    def test_a_closed_phone_releases_its_file_and_refuses_calls(self):
        path = os.path.join(self.tmp.name, "closing.sqlite3")
        p = x.Phone.open(path, self.server.url)
        p.enroll("w1", PASSWORD, None)
        shop_id = p.add_premises(shop("关门前的店")).id
        device = p.device_id()
        p.close()
        p.close()  # again: nothing happens
        with self.assertRaises(x.XunchaError.Storage):
            p.list_premises(False)
        with self.assertRaises(x.XunchaError.Storage):
            p.sync(None)
        self.assertEqual(p.device_id(), device)
        # The file is whole and opens again, with the record.
        again = x.Phone.open(path, self.server.url)
        self.assertEqual([q.id for q in again.list_premises(False)], [shop_id])
        again.close()

    def test_a_shops_hazards_open_and_closed_and_their_history(self):
        a = self.phone("history", "w1")
        p = a.add_premises(shop("有隐患的店"))
        a.record_inspection(x.InspectionDraft(
            premises_id=p.id, kinds=[x.ChecklistKind.EXITS],
            answers=exits_answers(lighting_works=False), geotag=GEOTAG, note=None))
        [h] = a.hazards_of(p.id)
        with open("../shared/testdata/exif-orientation/Landscape_1.jpg", "rb") as f:
            after = a.add_photo(f.read(), [])
        a.record_hazard_action(h.id, x.HazardAction.FIXED_ON_SPOT(photos=[after]), None, "当场修好")
        [closed] = a.hazards_of(p.id)
        self.assertEqual(closed.status, x.HazardStatus.CLOSED)
        self.assertEqual(a.open_hazards(), [])
        history = a.hazard_history(h.id)
        self.assertEqual([e.action for e in history], ["found", "fixed_on_spot"])
        self.assertEqual((history[1].by, history[1].note), ("w1", "当场修好"))

    def test_errors_arrive_as_exceptions_with_their_message(self):
        a = self.phone("errors", "w1")
        premises = a.add_premises(shop("错误测试店"))
        answers = exits_answers(lighting_works=True)
        answers[0] = x.Answer(code="EX-99", value=x.AnswerValue.YES_NO(True), detail=None, note=None, photos=[])
        with self.assertRaises(x.XunchaError.Invalid) as caught:
            a.record_inspection(x.InspectionDraft(
                premises_id=premises.id, kinds=[x.ChecklistKind.EXITS], answers=answers,
                geotag=None, note=None))
        self.assertIn("EX-99", caught.exception.message)
        self.assertEqual(a.inspections_of(premises.id), [], "nothing stored")

        # The core's own types cross the FFI: a date that is not one is refused while
        # crossing, with the FFI's error (not uniffi's internal one).
        with self.assertRaises(x.XunchaError.Invalid) as caught:
            a.record_inspection(x.InspectionDraft(
                premises_id=premises.id, kinds=[x.ChecklistKind.EXITS],
                answers=[x.Answer(code="EX-01", value=x.AnswerValue.DATE("next week"))],
                geotag=None, note=None))
        self.assertIn("not a date", caught.exception.message)

        # Goods in the corridor (EX-02) is a hazard that needs a photo: refused without one,
        # recorded with one.
        blocked = exits_answers(lighting_works=True)
        blocked[1] = x.Answer(code="EX-02", value=x.AnswerValue.YES_NO(True), detail=None, note=None, photos=[])
        draft = x.InspectionDraft(premises_id=premises.id, kinds=[x.ChecklistKind.EXITS], answers=blocked,
                                  geotag=None, note=None)
        with self.assertRaises(x.XunchaError.Invalid) as caught:
            a.record_inspection(draft)
        self.assertIn("EX-02", caught.exception.message)
        with open("../shared/testdata/exif-orientation/Landscape_3.jpg", "rb") as f:
            photo = a.add_photo(f.read(), [])
        blocked[1].photos = [photo]
        found = a.record_inspection(draft)
        self.assertEqual([f.code for f in found.findings], ["EX-02"])
        # A field of the core's Finding reaches the FFI without a copy of the type.
        self.assertGreaterEqual(found.findings[0].rectify_days, 0)

        with self.assertRaises(x.XunchaError.Invalid) as caught:
            a.record_hazard_action("h", x.HazardAction.ISSUE_NOTICE(deadline="next week", notice_no=None), None, None)
        self.assertIn("not a date", caught.exception.message)

        with self.assertRaises(x.XunchaError.NotFound):
            a.record_hazard_action("no-such-hazard", x.HazardAction.RECHECK_PASSED(), None, None)

        stranger = x.Phone.open(os.path.join(self.tmp.name, "stranger.sqlite3"), self.server.url)
        with self.assertRaises(x.XunchaError.NotEnrolled):
            stranger.sync(None)
        with self.assertRaises(x.XunchaError.Server) as caught:
            stranger.enroll("w1", "wrong password", None)
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "bad_login"))
        self.assertEqual(caught.exception.message, "用户名或密码错误")

    def test_calls_from_many_threads_are_safe(self):
        a = self.phone("threads", "w3")
        errors = []

        def work(n):
            try:
                for i in range(20):
                    a.add_premises(shop(f"店{n}-{i}"))
                    a.list_premises(False)
            except Exception as e:  # noqa: BLE001 - any failure fails the test below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        syncer = threading.Thread(target=lambda: a.sync(None))
        for t in threads:
            t.start()
        syncer.start()
        for t in threads + [syncer]:
            t.join()
        self.assertEqual(errors, [])
        mine = [p for p in a.list_premises(False) if p.fields.name.startswith("店")]
        self.assertEqual(len(mine), 160)
        a.sync(None)
        self.assertEqual(a.pending_count(), 0)


class Photos(unittest.TestCase):
    """The photo pipeline and the map conversion through the bindings."""

    def test_a_photo_is_stored_upright_without_metadata(self):
        with tempfile.TemporaryDirectory() as tmp:
            phone = x.Phone.open(os.path.join(tmp, "p.sqlite3"), "http://127.0.0.1:9")
            with open("../shared/testdata/exif-orientation/Portrait_6.jpg", "rb") as f:
                camera = f.read()
            photo = phone.add_photo(camera, [])
            self.assertEqual((photo.width, photo.height), (1067, 1600))
            self.assertEqual(len(photo.sha256), 64)
            full = phone.photo_path(photo.sha256, False)
            thumb = phone.photo_path(photo.sha256, True)
            with open(full, "rb") as f:
                data = f.read()
            self.assertEqual(len(data), photo.bytes)
            self.assertNotIn(b"Exif\0\0", data)
            self.assertTrue(os.path.getsize(thumb) < len(data))
            self.assertIsNone(phone.photo_path("0" * 64, False))
            with self.assertRaises(x.XunchaError.Invalid) as caught:
                phone.add_photo(b"\xff\xd8\xff not really a jpeg", [])
            self.assertIn("photo", caught.exception.message)
            # Watermarks need a font that covers Chinese, set once by the app.
            with self.assertRaises(x.XunchaError.Invalid):
                phone.add_photo(camera, ["老王面馆"])
            phone.set_watermark_font("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
            stamped = phone.add_photo(camera, ["2026-11-23 10:41", "幸福路1号", "老王面馆"])
            self.assertNotEqual(stamped.sha256, photo.sha256)
            with self.assertRaises(x.XunchaError.Invalid):
                phone.set_watermark_font("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

    def test_positions_convert_to_gcj02_for_chinese_maps(self):
        p = x.wgs84_to_gcj02(39.9087, 116.3975)
        self.assertAlmostEqual(p.lat - 39.9087, 0.0014, delta=0.0004)
        self.assertAlmostEqual(p.lon - 116.3975, 0.0062, delta=0.0006)


if __name__ == "__main__":
    unittest.main()
