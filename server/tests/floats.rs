//! Full-precision floats (GPS fixes) survive the trip phone -> server -> phone through the
//! real push and pull handlers as JSON text: the author, the server and another phone end with
//! one digest. A float the server parses back one ULP off makes the author's digest differ
//! from everyone else's for ever.
//!
//! (This lives in the server's tests on purpose: the core's dev-dependency `jsonschema` turns
//! on serde_json's `float_roundtrip` in the core's own test builds, which hid the defect there.)

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::china_date;
use xuncha_core::model::{DeviceId, Geotag, LatLon, PremisesFields, PremisesKind};
use xuncha_core::sync::PullResponse;
use xuncha_server::accounts;

use common::*;

/// A new phone of w1 adds a shop at `at` in g1, inspects it with a fix at `fix` and pushes;
/// then a fresh phone of w1 pulls what the server took in after `cursor`. Returns the author's
/// and the other phone's digests, and the server's cursor after the push.
async fn phone_server_phone(
    s: &Server,
    device: &str,
    cursor: u64,
    at: (f64, f64),
    fix: (f64, f64, f64),
) -> (String, String, u64) {
    let token = common::off_runtime(|| {
        s.state
            .db()
            .write(|store| accounts::issue_token(store.tables(), "w1", &DeviceId::from(device)))
    })
    .unwrap();
    let mut author = phone(device, "w1", now_ms());
    let mut fields = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    fields.grid_id = Some("g1".into());
    fields.location = Some(LatLon {
        lat: at.0,
        lon: at.1,
    });
    let shop = author.add_premises(fields).unwrap();
    let mut visit = sample_visit(author.catalog(), &shop, china_date(now_ms()), &["FE-03"]);
    visit.geotag = Some(Geotag {
        lat: fix.0,
        lon: fix.1,
        accuracy_m: fix.2,
        source: "gps".into(),
        mock: false,
        fix_time_ms: now_ms(),
    });
    author.record_inspection(visit).unwrap();
    let (code, ack) = push(s, &token, &author.pending_ops(100).unwrap()).await;
    assert_eq!(code, axum::http::StatusCode::OK, "{ack}");

    let uri = format!("/v1/sync/pull?after={cursor}");
    let (_, headers, bytes) = send_raw(s, "GET", &uri, Some(&s.w1b), vec![], &[]).await;
    assert!(
        headers.get("content-encoding").is_none(),
        "a small page is not gzipped"
    );
    let page: PullResponse = serde_json::from_slice(&bytes).unwrap();
    let mut other = phone("phone-w1b", "w1", now_ms());
    other.apply_ops(&page.ops).unwrap();
    (
        author.digest().unwrap(),
        other.digest().unwrap(),
        page.cursor,
    )
}

#[tokio::test]
async fn a_gps_double_that_parses_one_ulp_off_converges() {
    // The chaos test's value: without a correctly rounding parser the server reads it as
    // 31.229939843179658, and so does every phone but its author.
    let s = server();
    let (author, other, _) = phone_server_phone(
        &s,
        "phone-a",
        0,
        (31.229939843179654, 121.47370140388391),
        (31.229939843179654, 121.4737014038839, 7.8999999999999995),
    )
    .await;
    let on_server =
        common::off_runtime(|| s.state.db().write(|store| Ok(store.replica().digest()?))).unwrap();
    assert_eq!(author, on_server, "author and server differ");
    assert_eq!(on_server, other, "server and the other phone differ");
}

/// Every finite double in a range, drawn from all bit patterns (subnormals, 17-digit values,
/// exact integers) as well as uniformly.
fn double_in(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("in range", move |x| x.is_finite() && (lo..=hi).contains(x)),
        lo..=hi,
    ]
}

#[test]
fn any_double_converges_phone_to_server_to_phone() {
    // One server for all cases (setting one up hashes four passwords); each case is a new
    // phone, and the other phone takes only what the server took in since the last case.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = server();
    let cursor = std::cell::Cell::new(0);
    let case = std::cell::Cell::new(0);
    let doubles = (
        double_in(-90.0, 90.0),
        double_in(-180.0, 180.0),
        double_in(-90.0, 90.0),
        double_in(-180.0, 180.0),
        double_in(0.0, 100_000.0),
    );
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&doubles, |(lat, lon, fix_lat, fix_lon, accuracy)| {
            case.set(case.get() + 1);
            let (author, other, next) = runtime.block_on(phone_server_phone(
                &s,
                &format!("phone-{}", case.get()),
                cursor.get(),
                (lat, lon),
                (fix_lat, fix_lon, accuracy),
            ));
            cursor.set(next);
            prop_assert_eq!(author, other);
            Ok(())
        })
        .unwrap();
}
