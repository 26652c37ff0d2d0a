//! Identifiers. All are strings on the wire; new ones are random UUIDs except hazard ids,
//! which are derived so that every replica names the same hazard the same way.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        // A string on the FFI.
        #[cfg(feature = "uniffi")]
        uniffi::custom_newtype!($name, String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

string_id!(
    /// One installation of the app (or the server, or the dashboard); author of a stream of ops.
    DeviceId
);
string_id!(
    /// A person with an account.
    UserId
);
string_id!(
    /// A shop or other premises.
    PremisesId
);
string_id!(
    /// One inspection visit.
    InspectionId
);
string_id!(
    /// A hazard: derived from the inspection that found it and the checklist item.
    HazardId
);
string_id!(
    /// A campaign (专项行动): one sweep across grids, set by a supervisor.
    CampaignId
);

fn random_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl CampaignId {
    /// A new random campaign id.
    pub fn random() -> Self {
        CampaignId(random_uuid())
    }
}

impl DeviceId {
    /// A new random device id.
    pub fn random() -> Self {
        DeviceId(random_uuid())
    }
}
/// What a premises' QR code (场所码, printed from the dashboard and stuck at the door) holds:
/// a link the app opens at that premises.
const QR_PREFIX: &str = "xuncha://premises/";

impl PremisesId {
    /// A new random premises id.
    pub fn random() -> Self {
        PremisesId(random_uuid())
    }

    /// The text of this premises' QR code.
    pub fn qr_text(&self) -> String {
        format!("{QR_PREFIX}{}", self.0)
    }

    /// The premises a scanned QR code names, if it is one of ours (anything else scanned, a
    /// payment code or a web link, gives `None`).
    pub fn from_qr_text(text: &str) -> Option<PremisesId> {
        let id = text.trim().strip_prefix(QR_PREFIX)?;
        let plausible = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        plausible.then(|| PremisesId(id.to_owned()))
    }
}
impl InspectionId {
    /// A new random inspection id.
    pub fn random() -> Self {
        InspectionId(random_uuid())
    }
}

impl HazardId {
    /// The hazard found at `item_code` by the inspection `root` (the first of a chain of
    /// corrections), so a correction that finds the same hazard names the same one.
    pub fn derive(root: &InspectionId, item_code: &str) -> Self {
        let mut h = Sha256::new();
        h.update(root.0.as_bytes());
        h.update([0u8]);
        h.update(item_code.as_bytes());
        HazardId(hex::encode(&h.finalize()[..16]))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_premises_qr_code_names_it_and_nothing_else_does() {
        let id = super::PremisesId::random();
        assert_eq!(
            super::PremisesId::from_qr_text(&format!(" {} ", id.qr_text())),
            Some(id)
        );
        for other in [
            "https://qr.alipay.com/abc",
            "xuncha://premises/",
            "xuncha://premises/../../etc",
            "xuncha://hazards/1",
        ] {
            assert_eq!(super::PremisesId::from_qr_text(other), None, "{other}");
        }
    }

    use super::*;

    #[test]
    fn hazard_ids_are_derived_deterministically() {
        let i = InspectionId::from("insp-1");
        assert_eq!(HazardId::derive(&i, "FE-03"), HazardId::derive(&i, "FE-03"));
        assert_ne!(HazardId::derive(&i, "FE-03"), HazardId::derive(&i, "FE-04"));
        assert_eq!(HazardId::derive(&i, "FE-03").0.len(), 32);
    }
}
