//! Secrets: a service's `secrets = [...]` names and, while a deploy or a
//! restart needs them, their values.
//!
//! It owns the types that keep values out of sight ([`SecretValues`] prints
//! no value in `Debug`, [`Secrets`] serializes its names only, so a spec in
//! `state.json`'s history holds no value) and the CLI's side of a deploy:
//! reading the values on the deploying machine ([`source`]). Where the daemon
//! keeps them is `state::secrets` (the 0600 store); how they travel is the
//! deploy request's body (`wire::DeployRequest::secrets`), never a command line.

pub mod source;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use source::{DEFAULT_FILE, SecretsError, gather};

/// Secret values by name. `Debug` shows the names only; serde writes the
/// values (it is what the deploy request carries and the store keeps), so
/// nothing else should serialize it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValues(BTreeMap<String, String>);

impl SecretValues {
    pub fn new(values: BTreeMap<String, String>) -> SecretValues {
        SecretValues(values)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// Only the values of `names`; Err names the first one missing.
    pub fn only(&self, names: &[String]) -> Result<SecretValues, String> {
        let mut kept = BTreeMap::new();
        for name in names {
            let value = self.0.get(name).ok_or_else(|| name.clone())?;
            kept.insert(name.clone(), value.clone());
        }
        Ok(SecretValues(kept))
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, Redacted)))
            .finish()
    }
}

/// What `Debug` prints instead of a secret value.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Environment pairs as `Debug` shows them: the names only, for the types
/// that hold an app's environment (secret values among it).
pub struct KeysOnly<'a>(pub &'a [(String, String)]);

impl fmt::Debug for KeysOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// A service's secrets: the names from `teal.toml`, and their values once
/// the daemon has them (from the deploy request or its store). Serializes as
/// the list of names: values never travel or persist inside a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `secrets = [...]`, in file order.
    pub names: Vec<String>,
    /// Filled by the daemon before instances or hooks start; empty elsewhere.
    pub values: SecretValues,
}

impl Secrets {
    pub fn named(names: Vec<String>) -> Secrets {
        Secrets {
            names,
            values: SecretValues::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The values of the named secrets as environment pairs (empty before the
    /// daemon filled them in).
    pub fn env(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.values.iter().map(|(k, v)| (k.clone(), v.clone()))
    }
}

impl Serialize for Secrets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d).map(Secrets::named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_specs_show_names_never_values() {
        let values = SecretValues::new([("TOKEN".to_string(), "hunter2".to_string())].into());
        assert_eq!(format!("{values:?}"), "{\"TOKEN\": <redacted>}");
        let secrets = Secrets {
            names: vec!["TOKEN".into()],
            values,
        };
        assert!(!format!("{secrets:?}").contains("hunter2"));
        let json = serde_json::to_string(&secrets).unwrap();
        assert_eq!(json, "[\"TOKEN\"]");
        let back: Secrets = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Secrets::named(vec!["TOKEN".into()]));
    }

    #[test]
    fn only_keeps_the_named_values_and_names_a_missing_one() {
        let values = SecretValues::new(
            [("A".to_string(), "1".to_string()), ("B".into(), "2".into())].into(),
        );
        let kept = values.only(&["A".into()]).unwrap();
        assert_eq!(kept.names().collect::<Vec<_>>(), ["A"]);
        assert_eq!(values.only(&["A".into(), "C".into()]).unwrap_err(), "C");
    }
}
