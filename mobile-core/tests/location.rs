//! Proximity, grids by position, GCJ-02.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use xuncha_core::location::{
    GridIndex, ProximityRule, check_proximity, distance_m, wgs84_to_gcj02,
};
use xuncha_core::model::{Geotag, LatLon};

fn fix(lat: f64, lon: f64, accuracy_m: f64, mock: bool) -> Geotag {
    Geotag {
        lat,
        lon,
        accuracy_m,
        source: "gps".into(),
        mock,
        fix_time_ms: 1_795_400_000_000,
    }
}

#[test]
fn the_proximity_tolerance_grows_with_the_reported_accuracy() {
    let shop = LatLon {
        lat: 31.2304,
        lon: 121.4737,
    };
    // About 300 m north (0.0027 degrees of latitude).
    let north = 31.2304 + 0.0027;
    assert!(
        (distance_m(
            shop,
            LatLon {
                lat: north,
                lon: 121.4737
            }
        ) - 300.0)
            .abs()
            < 2.0
    );
    let rule = ProximityRule::default();
    let near = check_proximity(shop, &fix(31.2305, 121.4738, 10.0, false), &rule);
    assert!(!near.flagged && near.distance_m < 20.0, "{near:?}");
    let far_sharp = check_proximity(shop, &fix(north, 121.4737, 10.0, false), &rule);
    assert!(
        far_sharp.flagged,
        "300 m away with a 10 m fix: {far_sharp:?}"
    );
    let far_vague = check_proximity(shop, &fix(north, 121.4737, 80.0, false), &rule);
    assert!(
        !far_vague.flagged,
        "300 m away with an 80 m fix is within 150 + 2 x 80: {far_vague:?}"
    );
    let capped = check_proximity(
        shop,
        &fix(31.2304 + 0.0135, 121.4737, 5_000.0, false),
        &rule,
    );
    assert!(
        capped.flagged && capped.tolerance_m == 1_000.0,
        "{capped:?}"
    );
    let mocked = check_proximity(shop, &fix(31.2304, 121.4737, 5.0, true), &rule);
    assert!(
        mocked.flagged,
        "a mocked location is flagged even on the spot"
    );
}

#[test]
fn gcj02_shifts_positions_in_china_by_hundreds_of_metres_and_nowhere_else() {
    for p in [
        LatLon {
            lat: 39.9087,
            lon: 116.3975,
        }, // Beijing
        LatLon {
            lat: 31.2304,
            lon: 121.4737,
        }, // Shanghai
        LatLon {
            lat: 22.5431,
            lon: 114.0579,
        }, // Shenzhen
    ] {
        let g = wgs84_to_gcj02(p);
        let shift = distance_m(p, g);
        assert!((100.0..800.0).contains(&shift), "{p:?} -> {g:?}: {shift} m");
        // Smooth: nearby points move alike.
        let q = wgs84_to_gcj02(LatLon {
            lat: p.lat + 0.001,
            lon: p.lon + 0.001,
        });
        assert!(
            (distance_m(g, q)
                - distance_m(
                    p,
                    LatLon {
                        lat: p.lat + 0.001,
                        lon: p.lon + 0.001
                    }
                ))
            .abs()
                < 1.0
        );
    }
    // Beijing: GCJ-02 lies north-east of WGS-84 by roughly 0.0014 and 0.0062 degrees.
    let g = wgs84_to_gcj02(LatLon {
        lat: 39.9087,
        lon: 116.3975,
    });
    assert!(
        (g.lat - 39.9087 - 0.0014).abs() < 0.0004 && (g.lon - 116.3975 - 0.0062).abs() < 0.0006,
        "{g:?}"
    );
    let tokyo = LatLon {
        lat: 35.6762,
        lon: 139.6503,
    };
    assert_eq!(wgs84_to_gcj02(tokyo), tokyo);
}

#[test]
fn a_point_maps_to_the_grid_whose_polygon_holds_it() {
    let square = |id: &str, x0: f64, y0: f64| {
        let ring = vec![
            (x0, y0),
            (x0 + 0.01, y0),
            (x0 + 0.01, y0 + 0.01),
            (x0, y0 + 0.01),
            (x0, y0),
        ];
        (id.to_owned(), geo::Polygon::new(ring.into(), vec![]))
    };
    // An L-shaped grid whose bounding box covers its neighbour's square.
    let l_shape = vec![
        (121.0, 31.0),
        (121.02, 31.0),
        (121.02, 31.01),
        (121.01, 31.01),
        (121.01, 31.02),
        (121.0, 31.02),
        (121.0, 31.0),
    ];
    let index = GridIndex::new(vec![
        ("L".to_owned(), geo::Polygon::new(l_shape.into(), vec![])),
        square("inner", 121.01, 31.01),
    ]);
    assert_eq!(index.len(), 2);
    assert_eq!(
        index.grid_at(LatLon {
            lat: 31.005,
            lon: 121.015
        }),
        Some("L")
    );
    assert_eq!(
        index.grid_at(LatLon {
            lat: 31.015,
            lon: 121.015
        }),
        Some("inner"),
        "inside L's box, not its polygon"
    );
    assert_eq!(
        index.grid_at(LatLon {
            lat: 31.05,
            lon: 121.05
        }),
        None
    );
}

#[test]
fn an_inspection_far_from_its_premises_is_flagged_when_recorded() {
    use xuncha_core::checklist::sample::sample_visit;
    use xuncha_core::clock::china_date;
    use xuncha_core::model::{PremisesFields, PremisesKind, UserId};
    let mut s = xuncha_core::store::Store::open_in_memory().unwrap();
    s.set_user(UserId::from("w")).unwrap();
    let mut f = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    f.location = Some(LatLon {
        lat: 31.2304,
        lon: 121.4737,
    });
    let shop = s.add_premises(f).unwrap();
    let today = china_date(chrono::Utc::now().timestamp_millis());
    let mut here = sample_visit(s.catalog(), &shop, today, &[]);
    here.geotag = Some(fix(31.2305, 121.4737, 8.0, false));
    let mut away = here.clone();
    away.geotag = Some(fix(31.2404, 121.4737, 8.0, false)); // about 1.1 km north
    let ok = s.record_inspection(here).unwrap().proximity.unwrap();
    let far = s.record_inspection(away).unwrap().proximity.unwrap();
    assert!(
        !ok.flagged && far.flagged && far.distance_m > 1_000.0,
        "{ok:?} {far:?}"
    );
    // Stored with the inspection, so every replica and the supervisors see it.
    let stored = s.inspections_of(&shop.id).unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|i| i.proximity.as_ref().is_some_and(|p| p.flagged))
            .count(),
        1
    );
}

#[test]
fn a_new_shop_without_a_grid_is_filed_in_the_grid_it_stands_in() {
    use xuncha_core::location::GridArea;
    use xuncha_core::model::{PremisesFields, PremisesKind};
    use xuncha_core::store::Store;

    let square = |id: &str, lon: f64| GridArea {
        id: id.into(),
        name: format!("{id} 网格"),
        geometry: serde_json::json!({"type": "Polygon", "coordinates": [[
            [lon, 31.0], [lon + 0.01, 31.0], [lon + 0.01, 31.01], [lon, 31.01], [lon, 31.0]]]}),
    };
    let mut store = Store::open_in_memory().unwrap();
    store
        .set_user(xuncha_core::model::UserId("w1".into()))
        .unwrap();
    store
        .set_grids(&[square("XF-01", 121.0), square("XF-02", 121.01)])
        .unwrap();
    assert_eq!(
        store.grid_names().unwrap(),
        vec![
            ("XF-01".to_owned(), "XF-01 网格".to_owned()),
            ("XF-02".to_owned(), "XF-02 网格".to_owned())
        ]
    );
    let mut shop = PremisesFields::new("小吃店", "幸福路 1 号", PremisesKind::Catering);
    shop.location = Some(LatLon {
        lat: 31.005,
        lon: 121.015,
    });
    assert_eq!(
        store
            .add_premises(shop.clone())
            .unwrap()
            .fields
            .grid_id
            .as_deref(),
        Some("XF-02")
    );
    // A grid the worker chose stays; so does none where no grid covers the place.
    shop.grid_id = Some("XF-01".into());
    assert_eq!(
        store
            .add_premises(shop.clone())
            .unwrap()
            .fields
            .grid_id
            .as_deref(),
        Some("XF-01")
    );
    shop.grid_id = None;
    shop.location = Some(LatLon {
        lat: 30.0,
        lon: 120.0,
    });
    assert_eq!(store.add_premises(shop).unwrap().fields.grid_id, None);
}
