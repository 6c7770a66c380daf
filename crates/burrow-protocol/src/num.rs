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
/// A whole number written as a float (`79.0`) is taken, as JSON Schema counts
/// it an integer.
pub fn safe<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(v) if v.fract() != 0.0 || v < 0.0 => Err(serde::de::Error::custom(format!("{v} is not a whole number of at least 0"))),
        Some(v) if v > MAX_SAFE_INTEGER as f64 => Err(serde::de::Error::custom(format!("{v} is larger than {MAX_SAFE_INTEGER}"))),
        // Whole and at most 2^53 - 1: exact as an f64, and `79.0` is 79.
        Some(v) => Ok(Some(v as u64)),
    }
}

/// `#[serde(deserialize_with = "crate::protocol::num::whole_u16")]`: a
/// `u16` that may be written `292.0`. JSON Schema (and so a generated client)
/// counts `292.0` as an integer, and JavaScript does not tell them apart.
pub fn whole_u16<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v = f64::deserialize(d)?;
    if v.fract() != 0.0 || !(0.0..=f64::from(u16::MAX)).contains(&v) {
        return Err(serde::de::Error::custom(format!("{v} is not a whole number from 0 to {}", u16::MAX)));
    }
    Ok(v as u16)
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

    #[derive(serde::Deserialize)]
    struct Size {
        #[serde(deserialize_with = "super::whole_u16")]
        rows: u16,
    }

    #[test]
    fn whole_u16_takes_integral_floats_only() {
        assert_eq!(serde_json::from_str::<Size>(r#"{"rows":292.0}"#).unwrap().rows, 292);
        assert_eq!(serde_json::from_str::<Size>(r#"{"rows":24}"#).unwrap().rows, 24);
        for bad in [r#"{"rows":1.5}"#, r#"{"rows":-1}"#, r#"{"rows":65536}"#, r#"{"rows":"3"}"#] {
            assert!(serde_json::from_str::<Size>(bad).is_err(), "{bad}");
        }
    }

    #[derive(serde::Deserialize)]
    struct Safe {
        #[serde(default, deserialize_with = "super::safe")]
        v: Option<u64>,
    }

    #[test]
    fn safe_takes_whole_numbers_up_to_2_pow_53() {
        assert_eq!(serde_json::from_str::<Safe>(r#"{"v":79.0}"#).unwrap().v, Some(79));
        assert_eq!(serde_json::from_str::<Safe>(r#"{"v":9007199254740991}"#).unwrap().v, Some(9007199254740991));
        assert_eq!(serde_json::from_str::<Safe>(r#"{}"#).unwrap().v, None);
        for bad in [r#"{"v":9007199254740992}"#, r#"{"v":0.5}"#, r#"{"v":-3}"#] {
            assert!(serde_json::from_str::<Safe>(bad).is_err(), "{bad}");
        }
    }
}
