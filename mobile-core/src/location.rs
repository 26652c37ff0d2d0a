//! Where things are: the proximity check of an inspection's geotag against its premises, the
//! grid (网格) a point lies in, and WGS-84 to GCJ-02 for maps in China. Pure.
//!
//! Phones record WGS-84 (what GPS gives); base maps in mainland China are GCJ-02, offset by a
//! few hundred metres, so the map layer converts with [`wgs84_to_gcj02`].

use geo::{Contains, Distance, Haversine, Point, Polygon};
use rstar::{AABB, RTree, RTreeObject};

use crate::model::{Geotag, LatLon};

/// How far from its premises an inspection may be taken before it is flagged.
#[derive(Clone, Debug, PartialEq)]
pub struct ProximityRule {
    /// Allowed distance with a perfect fix (a shop front, the street, GPS drift in between).
    pub base_m: f64,
    /// Metres added per metre of reported accuracy.
    pub accuracy_factor: f64,
    /// The tolerance never grows beyond this, however poor the fix.
    pub max_tolerance_m: f64,
}

impl Default for ProximityRule {
    fn default() -> Self {
        ProximityRule {
            base_m: 150.0,
            accuracy_factor: 2.0,
            max_tolerance_m: 1_000.0,
        }
    }
}

/// The result of the proximity check, stored with the inspection.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Proximity {
    /// Distance from the premises, metres.
    pub distance_m: f64,
    /// What was allowed, metres.
    pub tolerance_m: f64,
    /// Taken too far away (or with a mocked location): supervisors see the flag.
    pub flagged: bool,
}

/// Great-circle distance in metres.
pub fn distance_m(a: LatLon, b: LatLon) -> f64 {
    Haversine.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat))
}

/// Checks a geotag against the premises' position. The tolerance grows with the reported
/// accuracy; a location the OS reports as mocked is always flagged.
pub fn check_proximity(premises: LatLon, fix: &Geotag, rule: &ProximityRule) -> Proximity {
    let distance = distance_m(
        premises,
        LatLon {
            lat: fix.lat,
            lon: fix.lon,
        },
    );
    let tolerance = (rule.base_m + rule.accuracy_factor * fix.accuracy_m).min(rule.max_tolerance_m);
    Proximity {
        distance_m: (distance * 10.0).round() / 10.0,
        tolerance_m: tolerance,
        flagged: fix.mock || distance > tolerance,
    }
}

const GCJ_A: f64 = 6_378_245.0;
const GCJ_EE: f64 = 0.006_693_421_622_965_943;

fn outside_china(p: LatLon) -> bool {
    !(72.004..=137.8347).contains(&p.lon) || !(0.8293..=55.8271).contains(&p.lat)
}

fn shift_lat(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn shift_lon(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS-84 to GCJ-02 (the published "Mars coordinates" transform); unchanged outside China.
pub fn wgs84_to_gcj02(p: LatLon) -> LatLon {
    use std::f64::consts::PI;
    if outside_china(p) {
        return p;
    }
    let (x, y) = (p.lon - 105.0, p.lat - 35.0);
    let rad_lat = p.lat / 180.0 * PI;
    let magic = 1.0 - GCJ_EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    let d_lat = shift_lat(x, y) * 180.0 / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = shift_lon(x, y) * 180.0 / (GCJ_A / sqrt_magic * rad_lat.cos() * PI);
    LatLon {
        lat: p.lat + d_lat,
        lon: p.lon + d_lon,
    }
}

/// A grid polygon in the index.
#[derive(Debug)]
struct GridShape {
    id: String,
    polygon: Polygon<f64>,
    envelope: AABB<[f64; 2]>,
}

impl RTreeObject for GridShape {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// Grids by position: an R-tree of the polygons' bounding boxes, then point-in-polygon.
#[derive(Debug)]
pub struct GridIndex {
    tree: RTree<GridShape>,
}

impl GridIndex {
    /// Indexes grid polygons (WGS-84, x = longitude, y = latitude).
    pub fn new(grids: impl IntoIterator<Item = (String, Polygon<f64>)>) -> GridIndex {
        let shapes = grids
            .into_iter()
            .filter_map(|(id, polygon)| {
                let rect = geo::BoundingRect::bounding_rect(&polygon)?;
                let envelope =
                    AABB::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]);
                Some(GridShape {
                    id,
                    polygon,
                    envelope,
                })
            })
            .collect();
        GridIndex {
            tree: RTree::bulk_load(shapes),
        }
    }

    /// The grid a point lies in (the first found where polygons overlap at their borders).
    pub fn grid_at(&self, p: LatLon) -> Option<&str> {
        let point = Point::new(p.lon, p.lat);
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_point([p.lon, p.lat]))
            .find(|g| g.polygon.contains(&point))
            .map(|g| g.id.as_str())
    }

    /// How many grids are indexed.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// Whether no grid is indexed.
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }
}

/// A grid's boundary as the server sends it: GeoJSON geometry (Polygon or MultiPolygon, WGS-84).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GridArea {
    /// Grid id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// GeoJSON geometry.
    pub geometry: serde_json::Value,
}

/// The polygons of a GeoJSON geometry (a Polygon, or each part of a MultiPolygon).
pub fn polygons_from_geojson(geometry: &serde_json::Value) -> crate::Result<Vec<Polygon<f64>>> {
    let bad = |m: String| crate::Error::invalid("geometry", m);
    let g: geojson::Geometry =
        serde_json::from_value(geometry.clone()).map_err(|e| bad(e.to_string()))?;
    let shape: geo::Geometry<f64> = g
        .try_into()
        .map_err(|e: geojson::Error| bad(e.to_string()))?;
    let polygons = match shape {
        geo::Geometry::Polygon(p) => vec![p],
        geo::Geometry::MultiPolygon(m) => m.0,
        _ => return Err(bad("a grid must be a Polygon or MultiPolygon".into())),
    };
    for p in &polygons {
        let ok = p.exterior().0.len() >= 4
            && p.exterior()
                .0
                .iter()
                .all(|c| (-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y));
        if !ok {
            return Err(bad(
                "a polygon needs at least 3 corners within WGS-84 ranges".into(),
            ));
        }
    }
    Ok(polygons)
}

impl GridIndex {
    /// Indexes grid areas (a MultiPolygon grid counts with each of its parts); areas whose
    /// geometry does not parse are left out.
    pub fn from_areas(areas: &[GridArea]) -> GridIndex {
        GridIndex::new(areas.iter().flat_map(|a| {
            polygons_from_geojson(&a.geometry)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (a.id.clone(), p))
        }))
    }
}
