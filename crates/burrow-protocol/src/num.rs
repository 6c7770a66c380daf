//! Numbers the way JavaScript prints them.
//!
//! OpenCode's `cost` and token counts are JSON numbers: `0`, not `0.0`. serde
//! writes a whole `f64` with a fraction, which a strict client comparing bodies
//! would see as a difference. These helpers write whole values as integers.

use serde::{Deserialize, Deserializer, Serializer};

/// `#[serde(with = "crate::protocol::num")]` for an `f64` field.
pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        s.serialize_i64(*value as i64)
    } else {
        s.serialize_f64(*value)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    f64::deserialize(d)
}

/// The same for an `Option<f64>` (`#[serde(default, with = "crate::protocol::num::opt")]`).
pub mod opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

/// The largest integer a JavaScript client can hold exactly (2^53 - 1), the
/// bound OpenCode's schema puts on counts and times.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `#[serde(default, deserialize_with = "crate::protocol::num::safe")]` for an
/// `Option<u64>` that the document bounds by [`MAX_SAFE_INTEGER`]: a larger
/// value is refused, as the document says, instead of being taken silently.
pub fn safe<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(v) if v > MAX_SAFE_INTEGER => Err(serde::de::Error::custom(format!("{v} is larger than {MAX_SAFE_INTEGER}"))),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct N {
        #[serde(with = "super")]
        v: f64,
    }

    #[test]
    fn whole_numbers_have_no_fraction() {
        assert_eq!(serde_json::to_string(&N { v: 0.0 }).unwrap(), r#"{"v":0}"#);
        assert_eq!(serde_json::to_string(&N { v: 12.0 }).unwrap(), r#"{"v":12}"#);
        assert_eq!(serde_json::to_string(&N { v: 0.25 }).unwrap(), r#"{"v":0.25}"#);
        let back: N = serde_json::from_str(r#"{"v":3}"#).unwrap();
        assert_eq!(back.v, 3.0);
    }
}
