//! Spin's runtime configuration file (`--runtime-config-file`), the part this
//! host supports: where each key-value store lives.
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//! ```
//!
//! `type = "spin"` is the local SQLite store, which every label gets unless
//! configured otherwise. Anything this host cannot honour (another store type,
//! a custom SQLite `path`, other sections) is refused with a message, so the
//! same file never means something different here than under `spin up`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::manifest::Manifest;

/// Where one key-value store label lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The host's SQLite database in `--data-dir` (Spin's `type = "spin"`).
    Sqlite,
    /// A Redis server (Spin's `type = "redis"`).
    Redis { url: String },
}

/// The runtime configuration: store label → where it lives.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeMap<String, StoreConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    key_value_store: BTreeMap<String, StoreEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreEntry {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    path: Option<String>,
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the runtime config {}", path.display()))?;
        RuntimeConfig::parse(&text).with_context(|| format!("runtime config {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<RuntimeConfig> {
        let file: File = toml::from_str(text).context(
            "this host reads only `[key_value_store.<label>]` tables (type \"spin\" or \"redis\")",
        )?;
        let mut key_value_stores = BTreeMap::new();
        for (label, entry) in file.key_value_store {
            let store = match (entry.kind.as_str(), entry.url, entry.path) {
                ("spin", None, None) => StoreConfig::Sqlite,
                ("spin", _, Some(_)) => bail!(
                    "key-value store `{label}`: a custom SQLite `path` is not supported by this host; \
                     its SQLite store lives in --data-dir (leave `path` out)"
                ),
                ("redis", Some(url), None) => {
                    if url.starts_with("rediss://") {
                        bail!("key-value store `{label}`: TLS (rediss://) is not supported by this host; use redis:// (e.g. through a local TLS tunnel)");
                    }
                    if !url.starts_with("redis://") {
                        bail!("key-value store `{label}`: `url` must be redis://host:port (got {url:?})");
                    }
                    StoreConfig::Redis { url }
                }
                ("redis", None, _) => {
                    bail!("key-value store `{label}`: type \"redis\" needs a `url`")
                }
                (kind @ ("spin" | "redis"), _, _) => {
                    bail!("key-value store `{label}`: unexpected fields for type {kind:?}")
                }
                (other, _, _) => bail!(
                    "key-value store `{label}`: type {other:?} is not supported by this host \
                     (it supports \"spin\", its SQLite store, and \"redis\")"
                ),
            };
            key_value_stores.insert(label, store);
        }
        Ok(RuntimeConfig { key_value_stores })
    }

    /// Whether the label has a store: `default` always does, others only when configured.
    pub fn has_store(&self, label: &str) -> bool {
        label == crate::manifest::DEFAULT_STORE || self.key_value_stores.contains_key(label)
    }

    /// As Spin: every store label a component is granted must have a store.
    pub fn check_grants(&self, manifest: &Manifest) -> Result<()> {
        for (id, c) in &manifest.components {
            if let Some(label) = c.key_value_stores.iter().find(|l| !self.has_store(l)) {
                bail!(
                    "component `{id}`: key-value store `{label}` is not defined; give it a \
                     `[key_value_store.{label}]` table in a --runtime-config-file, or use `default`"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_and_spin_stores() {
        let c = RuntimeConfig::parse(
            r#"
            [key_value_store.default]
            type = "redis"
            url = "redis://127.0.0.1:6379"

            [key_value_store.cache]
            type = "spin"
            "#,
        )
        .unwrap();
        assert_eq!(
            c.key_value_stores["default"],
            StoreConfig::Redis {
                url: "redis://127.0.0.1:6379".into()
            }
        );
        assert_eq!(c.key_value_stores["cache"], StoreConfig::Sqlite);
        assert!(c.has_store("cache") && c.has_store("default") && !c.has_store("other"));
    }

    #[test]
    fn a_granted_label_needs_a_store() {
        use crate::manifest::tests::{env, APP};
        let app = APP.replace("[\"default\"]", "[\"default\", \"cache\"]");
        let manifest =
            Manifest::parse(&app, Path::new("."), &env(&[("SPIN_VARIABLE_SECRET", "x")])).unwrap();
        let err = RuntimeConfig::default()
            .check_grants(&manifest)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("`cache` is not defined"),
            "{err:#}"
        );
        let config = RuntimeConfig::parse("[key_value_store.cache]\ntype = \"spin\"").unwrap();
        config.check_grants(&manifest).unwrap();
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for (text, says) in [
            (
                "[key_value_store.default]\ntype = \"azure_cosmos\"",
                "not supported",
            ),
            (
                "[key_value_store.default]\ntype = \"redis\"",
                "needs a `url`",
            ),
            (
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"http://x\"",
                "redis://",
            ),
            (
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"rediss://x\"",
                "TLS",
            ),
            (
                "[key_value_store.default]\ntype = \"spin\"\npath = \"a.db\"",
                "custom SQLite `path`",
            ),
            (
                "[sqlite_database.default]\ntype = \"spin\"",
                "only `[key_value_store.<label>]`",
            ),
        ] {
            let e = format!("{:#}", RuntimeConfig::parse(text).unwrap_err());
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
