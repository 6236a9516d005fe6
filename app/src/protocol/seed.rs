//! Seeds are any u64, but a JS number holds integers exactly only up to 2^53: a seed travels as
//! a number up to there and as decimal text above (read back from either).

use serde::{de, Deserializer, Serializer};

const MAX_EXACT: u64 = (1 << 53) - 1;

pub fn serialize<S: Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
    if *seed <= MAX_EXACT {
        s.serialize_u64(*seed)
    } else {
        s.serialize_str(&seed.to_string())
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Seed;
    impl de::Visitor<'_> for Seed {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a seed: a whole number, or one as text")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(E::custom)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v >= 0.0 && v <= MAX_EXACT as f64 && v.fract() == 0.0 {
                Ok(v as u64)
            } else {
                Err(E::custom(format!("{v} is not a seed")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_any(Seed)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct S(#[serde(with = "super")] u64);

    #[test]
    fn every_seed_survives_as_a_number_or_text() {
        for seed in [0, 1, 133742, (1 << 53) - 1, 1 << 53, u64::MAX] {
            let json = serde_json::to_string(&S(seed)).unwrap();
            assert_eq!(serde_json::from_str::<S>(&json).unwrap(), S(seed), "{json}");
        }
        assert_eq!(serde_json::to_string(&S(7)).unwrap(), "7");
        assert_eq!(serde_json::to_string(&S(u64::MAX)).unwrap(), "\"18446744073709551615\"");
    }
}
