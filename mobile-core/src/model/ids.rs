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

fn random_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl DeviceId {
    /// A new random device id.
    pub fn random() -> Self {
        DeviceId(random_uuid())
    }
}
impl PremisesId {
    /// A new random premises id.
    pub fn random() -> Self {
        PremisesId(random_uuid())
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
    use super::*;

    #[test]
    fn hazard_ids_are_derived_deterministically() {
        let i = InspectionId::from("insp-1");
        assert_eq!(HazardId::derive(&i, "FE-03"), HazardId::derive(&i, "FE-03"));
        assert_ne!(HazardId::derive(&i, "FE-03"), HazardId::derive(&i, "FE-04"));
        assert_eq!(HazardId::derive(&i, "FE-03").0.len(), 32);
    }
}
