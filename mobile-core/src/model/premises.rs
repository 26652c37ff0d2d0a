//! Premises (商户/场所): the shops a grid worker inspects.
//!
//! A premises is stored as one last-writer-wins register per top-level field of
//! [`PremisesFields`] (see [`crate::merge`]), so two workers editing different fields offline
//! both keep their edit. Fields this version does not know (from a newer app) are kept in
//! `extra` and written back unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::PremisesId;
use crate::error::{Error, Result};

/// Kind of premises (the "nine small premises" 九小场所 and the like).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum PremisesKind {
    /// 餐饮.
    Catering,
    /// 零售.
    Retail,
    /// 小生产加工、小作坊.
    Workshop,
    /// 小旅馆、住宿.
    Lodging,
    /// 歌舞娱乐.
    Entertainment,
    /// 网吧.
    InternetCafe,
    /// 美容洗浴.
    BeautyBath,
    /// 小学校、幼儿园、培训机构.
    School,
    /// 小诊所.
    Clinic,
    /// 其他.
    Other,
}

impl PremisesKind {
    /// The wire name, as used in checklist conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            PremisesKind::Catering => "catering",
            PremisesKind::Retail => "retail",
            PremisesKind::Workshop => "workshop",
            PremisesKind::Lodging => "lodging",
            PremisesKind::Entertainment => "entertainment",
            PremisesKind::InternetCafe => "internet_cafe",
            PremisesKind::BeautyBath => "beauty_bath",
            PremisesKind::School => "school",
            PremisesKind::Clinic => "clinic",
            PremisesKind::Other => "other",
        }
    }
}

/// Gas used on the premises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum GasUse {
    /// No gas.
    #[default]
    None,
    /// 管道天然气.
    PipedNatural,
    /// 液化气瓶.
    BottledLpg,
}

impl GasUse {
    /// The wire name, as used in checklist conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            GasUse::None => "none",
            GasUse::PipedNatural => "piped_natural",
            GasUse::BottledLpg => "bottled_lpg",
        }
    }
}

/// A WGS-84 position.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LatLon {
    /// Latitude in degrees, -90..=90.
    pub lat: f64,
    /// Longitude in degrees, -180..=180.
    pub lon: f64,
}

impl LatLon {
    /// Checks the ranges (and rejects NaN).
    pub fn validate(&self) -> Result<()> {
        if !(-90.0..=90.0).contains(&self.lat) || !(-180.0..=180.0).contains(&self.lon) {
            return Err(Error::invalid(
                "location",
                format!(
                    "({}, {}) is not a WGS-84 latitude/longitude",
                    self.lat, self.lon
                ),
            ));
        }
        Ok(())
    }
}

/// Everything about a premises that people edit. Each field is its own LWW register.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PremisesFields {
    /// 单位名称.
    pub name: String,
    /// 统一社会信用代码 (GB 32100); many small shops have only a licence number.
    #[serde(default)]
    pub credit_code: Option<String>,
    /// Business licence number when there is no credit code.
    #[serde(default)]
    pub licence_no: Option<String>,
    /// 详细地址.
    pub address: String,
    /// 负责人.
    #[serde(default)]
    pub contact_person: Option<String>,
    /// 联系电话.
    #[serde(default)]
    pub phone: Option<String>,
    /// Kind of premises.
    pub kind: PremisesKind,
    /// Floor area in m².
    #[serde(default)]
    pub floor_area_m2: Option<f64>,
    /// Number of storeys used.
    #[serde(default)]
    pub storeys: Option<u32>,
    /// Gas used.
    #[serde(default)]
    pub gas_use: GasUse,
    /// Gas supplier.
    #[serde(default)]
    pub gas_supplier: Option<String>,
    /// People sleep on site (三合一场所).
    #[serde(default)]
    pub sleeps_on_site: bool,
    /// Most people present at once (decides whether one exit may suffice).
    #[serde(default)]
    pub max_occupants: Option<u32>,
    /// Position (WGS-84).
    #[serde(default)]
    pub location: Option<LatLon>,
    /// The grid (网格) it belongs to.
    #[serde(default)]
    pub grid_id: Option<String>,
    /// Archived instead of deleted.
    #[serde(default)]
    pub archived: bool,
    /// Fields from newer app versions, kept and re-sent unchanged.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl PremisesFields {
    /// A minimal record; the other fields take their defaults.
    pub fn new(name: impl Into<String>, address: impl Into<String>, kind: PremisesKind) -> Self {
        PremisesFields {
            name: name.into(),
            credit_code: None,
            licence_no: None,
            address: address.into(),
            contact_person: None,
            phone: None,
            kind,
            floor_area_m2: None,
            storeys: None,
            gas_use: GasUse::None,
            gas_supplier: None,
            sleeps_on_site: false,
            max_occupants: None,
            location: None,
            grid_id: None,
            archived: false,
            extra: BTreeMap::new(),
        }
    }

    /// The record as registers: field name to JSON value (`null` for an empty optional field).
    pub fn to_registers(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("PremisesFields serializes to an object"),
        }
    }

    /// Rebuilds the record from its registers.
    pub fn from_registers(registers: Map<String, Value>) -> Result<Self> {
        serde_json::from_value(Value::Object(registers))
            .map_err(|e| Error::invalid("premises", format!("stored premises do not parse: {e}")))
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in self.to_registers() {
            validate_field(&field, &value)?;
        }
        Ok(())
    }

    /// A checklist fact about these premises, by the name conditions use.
    pub fn fact(&self, name: &str) -> Option<Value> {
        match name {
            "kind" => Some(Value::from(self.kind.as_str())),
            "floor_area_m2" => self.floor_area_m2.map(Value::from),
            "storeys" => self.storeys.map(Value::from),
            "gas_use" => Some(Value::from(self.gas_use.as_str())),
            "sleeps_on_site" => Some(Value::from(self.sleeps_on_site)),
            "max_occupants" => self.max_occupants.map(Value::from),
            _ => None,
        }
    }
}

/// Checks one register's value, whether it comes from this phone or from a sync batch.
/// Unknown fields pass: they come from newer versions and are kept as they are.
pub fn validate_field(field: &str, value: &Value) -> Result<()> {
    fn parse<'v, T: Deserialize<'v>>(field: &str, value: &'v Value) -> Result<T> {
        T::deserialize(value).map_err(|e| Error::invalid(field, format!("{e} (value {value})")))
    }
    fn text(field: &str, value: &Value, required: bool, max_chars: usize) -> Result<()> {
        let s: Option<&str> = parse(field, value)?;
        match s {
            None if required => Err(Error::invalid(field, "is required")),
            Some(s) if required && s.trim().is_empty() => {
                Err(Error::invalid(field, "must not be empty"))
            }
            Some(s) if s.chars().count() > max_chars => Err(Error::invalid(
                field,
                format!("is longer than {max_chars} characters"),
            )),
            _ => Ok(()),
        }
    }
    match field {
        "name" | "address" => text(field, value, true, 200),
        "licence_no" | "contact_person" | "gas_supplier" | "grid_id" => {
            text(field, value, false, 100)
        }
        "credit_code" => match parse::<Option<&str>>(field, value)? {
            Some(code) => validate_credit_code(code),
            None => Ok(()),
        },
        "phone" => match parse::<Option<&str>>(field, value)? {
            Some(p)
                if p.is_empty()
                    || p.len() > 20
                    || !p.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c)) =>
            {
                Err(Error::invalid(
                    field,
                    format!("{p:?} is not a phone number"),
                ))
            }
            _ => Ok(()),
        },
        "kind" => parse::<PremisesKind>(field, value).map(drop),
        "gas_use" => parse::<GasUse>(field, value).map(drop),
        "sleeps_on_site" | "archived" => parse::<bool>(field, value).map(drop),
        "floor_area_m2" => match parse::<Option<f64>>(field, value)? {
            Some(a) if !(a > 0.0 && a <= 1_000_000.0) => {
                Err(Error::invalid(field, format!("{a} m² is not a floor area")))
            }
            _ => Ok(()),
        },
        "storeys" => match parse::<Option<u32>>(field, value)? {
            Some(n) if !(1..=200).contains(&n) => Err(Error::invalid(
                field,
                format!("{n} is not a number of storeys"),
            )),
            _ => Ok(()),
        },
        "max_occupants" => match parse::<Option<u32>>(field, value)? {
            Some(n) if n > 100_000 => Err(Error::invalid(
                field,
                format!("{n} people is not plausible"),
            )),
            _ => Ok(()),
        },
        "location" => match parse::<Option<LatLon>>(field, value)? {
            Some(p) => p.validate(),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Checks a unified social credit code (统一社会信用代码): 18 characters from the GB 32100
/// alphabet, the last one a check character over the first 17.
pub fn validate_credit_code(code: &str) -> Result<()> {
    const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let bad = |why: &str| Error::invalid("credit_code", format!("{code:?} {why}"));
    let bytes = code.as_bytes();
    if bytes.len() != 18 {
        return Err(bad("is not 18 characters long"));
    }
    let value = |b: u8| ALPHABET.iter().position(|&a| a == b).map(|p| p as u32);
    let mut sum = 0;
    for (i, &b) in bytes[..17].iter().enumerate() {
        sum += value(b).ok_or_else(|| bad("has a character outside the GB 32100 alphabet"))?
            * WEIGHTS[i];
    }
    let expected = ALPHABET[((31 - sum % 31) % 31) as usize];
    if bytes[17] != expected {
        return Err(bad("has a wrong check character"));
    }
    Ok(())
}

/// A premises with its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Premises {
    /// Id.
    pub id: PremisesId,
    /// The current value of every field.
    #[serde(flatten)]
    pub fields: PremisesFields,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes_are_checked_per_gb_32100() {
        for ok in [
            "91350100M000100Y43",
            "91440300708461136T",
            "91110000802100433B",
        ] {
            validate_credit_code(ok).unwrap();
        }
        assert!(validate_credit_code("91350100M000100Y44").is_err());
        assert!(validate_credit_code("91350100M000100Y4").is_err());
        assert!(validate_credit_code("91350100I000100Y43").is_err());
    }

    #[test]
    fn registers_round_trip_and_keep_unknown_fields() {
        let mut p = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
        p.storeys = Some(2);
        p.extra.insert("wechat".into(), Value::from("wang123"));
        let regs = p.to_registers();
        assert_eq!(regs["storeys"], Value::from(2));
        assert_eq!(regs["credit_code"], Value::Null);
        assert_eq!(regs["wechat"], Value::from("wang123"));
        assert_eq!(PremisesFields::from_registers(regs).unwrap(), p);
    }

    #[test]
    fn bad_fields_name_the_field() {
        let mut p = PremisesFields::new(" ", "x", PremisesKind::Retail);
        assert!(p.validate().unwrap_err().to_string().contains("name"));
        p.name = "ok".into();
        p.location = Some(LatLon {
            lat: f64::NAN,
            lon: 0.0,
        });
        assert!(p.validate().unwrap_err().to_string().contains("location"));
        p.location = None;
        p.floor_area_m2 = Some(-3.0);
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("floor_area_m2")
        );
        assert!(validate_field("kind", &Value::from("spaceship")).is_err());
        assert!(validate_field("future_field", &Value::from(1)).is_ok());
    }
}
