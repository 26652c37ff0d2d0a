"""FFI cost: one call round trip, and recording an inspection, through the Python bindings
(real C ABI) versus the same calls made natively in Rust, in one run. Run by scripts/ffi-bench."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import xuncha as x

N = int(os.environ.get("FFI_BENCH_N", "300"))


def answers(i):
    def yes_no(code, value):
        return x.Answer(code=code, value=x.AnswerValue.YES_NO(value), detail=None, note=None, photos=[])
    return [
        yes_no("EX-01", False), yes_no("EX-02", False),
        x.Answer(code="EX-03", value=x.AnswerValue.COUNT(2), detail=None, note=None, photos=[]),
        yes_no("EX-04", False), yes_no("EX-05", i % 2 == 0), yes_no("EX-06", True),
        x.Answer(code="EX-07", value=x.AnswerValue.CHOICE("no"), detail=None, note=None, photos=[]),
    ]


def main():
    native_example = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        phone = x.Phone.open(os.path.join(tmp, "ffi.sqlite3"), "http://127.0.0.1:9")
        calls = []
        for _ in range(N * 100):
            t = time.perf_counter_ns()
            phone.device_id()
            calls.append(time.perf_counter_ns() - t)
        empty = []
        for _ in range(N * 100):
            t = time.perf_counter_ns()
            empty.append(time.perf_counter_ns() - t)

        # The native side measures on its own file and prepares an identical one for us
        # (signed in locally, one shop, no inspections yet).
        native = json.loads(subprocess.check_output([native_example, tmp, str(N)], text=True))
        phone = x.Phone.open(os.path.join(tmp, "python-record.sqlite3"), "http://127.0.0.1:9")
        shop = phone.list_premises(False)[0]
        records = []
        for i in range(N):
            draft = x.InspectionDraft(premises_id=shop.id, kinds=[x.ChecklistKind.EXITS],
                                      answers=answers(i), geotag=None, note=None)
            t = time.perf_counter_ns()
            phone.record_inspection(draft)
            records.append(time.perf_counter_ns() - t)

        # Of that, the Python side packing the record into a buffer (uniffi's generated code).
        lowering = []
        for i in range(N):
            draft = x.InspectionDraft(premises_id=shop.id, kinds=[x.ChecklistKind.EXITS],
                                      answers=answers(i), geotag=None, note=None)
            t = time.perf_counter_ns()
            x._UniffiFfiConverterTypeInspectionDraft.lower(draft)
            lowering.append(time.perf_counter_ns() - t)

    call = statistics.median(calls)
    loop = statistics.median(empty)
    record = statistics.median(records)
    print(f"call round trip (device_id, returns a string): Python {call / 1000:.2f} µs "
          f"(timer alone {loop / 1000:.2f} µs) vs native {native['call_ns'] / 1000:.2f} µs")
    print(f"record_inspection (exits checklist, 7 answers): Python {record / 1000:.0f} µs vs "
          f"native {native['record_ns'] / 1000:.0f} µs = {record / native['record_ns']:.2f}x")
    print(f"  of which Python packing the draft: {statistics.median(lowering) / 1000:.0f} µs")


if __name__ == "__main__":
    main()
