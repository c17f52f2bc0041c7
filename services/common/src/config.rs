//! Layered configuration: built-in defaults, then an optional TOML file, then environment
//! variables prefixed `MEMBERD_` (nested keys joined by `__`, e.g. `MEMBERD_LEDGER__SCHEDULER_INTERVAL_SECS`).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// Environment variable prefix for every setting.
pub const ENV_PREFIX: &str = "MEMBERD_";

/// Loads `T` from its defaults, the file (when given, it must exist) and the environment.
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError(format!(
                "config file {} does not exist; pass an existing file or omit --config",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
    figment
        .extract()
        .map_err(|e| ConfigError(format!("invalid configuration: {e}")))
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A secret setting: never printed by `Debug` or `Display`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is compared or sent, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Sample {
        http_addr: String,
        nested: Nested,
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Nested {
        value: u32,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type.
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("m.toml", "http_addr = \"1.2.3.4:1\"\n[nested]\nvalue = 3\n")?;
            jail.set_env("MEMBERD_NESTED__VALUE", "7");
            let loaded: Sample = load(Some(Path::new("m.toml"))).map_err(|e| e.0)?;
            assert_eq!(loaded.http_addr, "1.2.3.4:1");
            assert_eq!(loaded.nested.value, 7);
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = load::<Sample>(Some(Path::new("/nonexistent/m.toml"))).unwrap_err();
        assert!(err.0.contains("does not exist"));
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
