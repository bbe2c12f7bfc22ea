//! `spin.toml` (manifest version 2): the single source of truth for the app.
//!
//! Only the parts of the format this host supports are read; anything it does not
//! understand that would change behaviour (an unknown trigger type, a remote
//! `source`) is refused with a message, so an
//! app never silently runs differently here than on `spin up`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::outbound::AllowedHosts;
use crate::router::Route;
use crate::variables::{expand_template, Variables};

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Value>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<toml::Value>,
    build: Option<RawBuild>,
}

#[derive(Debug, Deserialize)]
struct RawBuild {
    command: String,
    workdir: Option<String>,
}

/// A component as the host runs it.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    pub id: String,
    pub source: PathBuf,
    pub allowed_hosts: AllowedHosts,
    pub key_value_stores: Vec<String>,
    /// Component variables, already resolved against the application variables.
    pub variables: BTreeMap<String, String>,
    pub environment: BTreeMap<String, String>,
    /// Directories mounted read-only into the component, as Spin's
    /// `files = [{ source = "dir", destination = "/path" }]` mounts them.
    pub files: Vec<FileMount>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileMount {
    /// On the host (relative paths are the manifest's directory's).
    pub source: PathBuf,
    /// In the component: an absolute path.
    pub destination: String,
}

/// Spin's `files` entries this host can run exactly: a directory mounted at
/// an absolute path. A glob or a single file (which Spin also accepts) is
/// refused rather than run differently.
fn file_mounts(id: &str, dir: &Path, entries: &[toml::Value]) -> Result<Vec<FileMount>> {
    let mut mounts = Vec::new();
    for entry in entries {
        let (Some(source), Some(destination)) = (
            entry.get("source").and_then(|v| v.as_str()),
            entry.get("destination").and_then(|v| v.as_str()),
        ) else {
            bail!(
                "component `{id}`: this host mounts `files` given as {{ source = \"dir\", destination = \"/path\" }} only (got {entry})"
            );
        };
        let source = dir.join(source);
        if !source.is_dir() {
            bail!(
                "component `{id}`: files source `{}` is not a directory",
                source.display()
            );
        }
        if !destination.starts_with('/') {
            bail!("component `{id}`: files destination `{destination}` must be an absolute path");
        }
        mounts.push(FileMount {
            source,
            destination: destination.to_string(),
        });
    }
    Ok(mounts)
}

#[derive(Debug, Clone)]
pub struct BuildStep {
    pub command: String,
    pub workdir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// `None` for a private endpoint (reachable only through `*.spin.internal`).
    pub route: Option<Route>,
    pub component: String,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub components: BTreeMap<String, ComponentConfig>,
    pub triggers: Vec<HttpTrigger>,
}

/// The only key-value store label that needs no runtime configuration on Spin
/// (others are checked against the runtime config when the app loads).
pub const DEFAULT_STORE: &str = "default";

impl Manifest {
    /// Read and validate a manifest. `env` supplies `SPIN_VARIABLE_*` values.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Self::parse(&text, &dir, env)
            .with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Only the build steps: `build` needs no variable values, as with `spin build`.
    pub fn load_build_steps(path: &Path) -> Result<Vec<(String, Option<BuildStep>)>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the manifest {}", path.display()))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let raw: RawManifest = toml::from_str(&text)
            .with_context(|| format!("invalid manifest {}", path.display()))?;
        Ok(raw
            .component
            .into_iter()
            .map(|(id, c)| {
                let step = c.build.map(|b| BuildStep {
                    command: b.command,
                    workdir: dir.join(b.workdir.unwrap_or_default()),
                });
                (id, step)
            })
            .collect())
    }

    pub fn parse(text: &str, dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version is {}; this host reads version 2 only",
                raw.spin_manifest_version
            );
        }
        let mut declared = BTreeMap::new();
        for (name, var) in &raw.variables {
            check_variable_name(name)?;
            if var.required && var.default.is_some() {
                bail!("variable `{name}` cannot be both required and have a default");
            }
            declared.insert(
                name.clone(),
                (var.default.clone(), var.required, var.secret),
            );
        }
        let variables = Variables::resolve(&declared, env)?;

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let source = match &c.source {
                toml::Value::String(s) => dir.join(s),
                _ => bail!(
                    "component `{id}`: only a local file `source = \"path.wasm\"` is supported by this host"
                ),
            };
            let mut component_vars = BTreeMap::new();
            for (name, template) in &c.variables {
                check_variable_name(name)
                    .with_context(|| format!("component `{id}` variable `{name}`"))?;
                let value = expand_template(template, &variables)
                    .with_context(|| format!("component `{id}` variable `{name}`"))?;
                component_vars.insert(name.clone(), value);
            }
            let mut hosts = Vec::new();
            for entry in &c.allowed_outbound_hosts {
                let expanded = expand_template(entry, &variables).with_context(|| {
                    format!("component `{id}` allowed_outbound_hosts `{entry}`")
                })?;
                hosts.push(expanded);
            }
            let allowed_hosts = AllowedHosts::parse(&hosts)
                .with_context(|| format!("component `{id}` allowed_outbound_hosts"))?;
            let files = file_mounts(&id, dir, &c.files)?;
            components.insert(
                id.clone(),
                ComponentConfig {
                    id,
                    source,
                    allowed_hosts,
                    key_value_stores: c.key_value_stores,
                    variables: component_vars,
                    environment: c.environment,
                    files,
                },
            );
        }

        let mut triggers = Vec::new();
        for (kind, value) in raw.trigger {
            if kind != "http" {
                bail!("trigger type `{kind}` is not supported by this host (only `http`)");
            }
            let list: Vec<RawHttpTrigger> = value.try_into().context(
                "[[trigger.http]] must be a list of tables with `route` and `component`",
            )?;
            for t in list {
                if !components.contains_key(&t.component) {
                    bail!(
                        "a trigger names component `{}`, which is not defined",
                        t.component
                    );
                }
                let route = match t.route {
                    RawRoute::Path(p) => Some(Route::parse(&p)?),
                    RawRoute::Private { private: true } => None,
                    RawRoute::Private { private: false } => {
                        bail!("route = {{ private = false }} is not valid; give a path instead")
                    }
                };
                triggers.push(HttpTrigger {
                    route,
                    component: t.component,
                });
            }
        }
        if triggers.is_empty() {
            bail!("the manifest has no [[trigger.http]]; there is nothing to serve");
        }
        Ok(Manifest {
            name: raw.application.name,
            components,
            triggers,
        })
    }
}

fn check_variable_name(name: &str) -> Result<()> {
    // Spin's rule: lower-case `_`-separated words, each starting with a letter
    // (`origin_2` is refused: its last word starts with a digit).
    let ok = !name.is_empty()
        && name.split('_').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!(
            "variable name `{name}` must be `_`-separated words of lower-case letters and digits, \
             each starting with a letter (Spin's rule)"
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_spins_rule() {
        for ok in ["origin", "webhook_origin", "sendgrid_api_key", "key2"] {
            assert!(check_variable_name(ok).is_ok(), "{ok}");
        }
        // Spin refuses these when it parses the manifest.
        for bad in ["origin_2", "Origin", "a__b", "_a", "a_", "2a", "a-b", ""] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
    }

    pub(crate) const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
secret = { required = true, secret = true }
greeting = { default = "hi" }
origin = { default = "http://127.0.0.1:9" }
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = { private = true }
component = "a"
[component.a]
source = "a.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["{{ origin }}", "http://*.spin.internal"]
[component.a.variables]
s = "{{ secret }}"
g = "{{ greeting }}, world"
"#;

    pub(crate) fn env(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn resolves_variables_and_templates() {
        let m =
            Manifest::parse(APP, Path::new("."), &env(&[("SPIN_VARIABLE_SECRET", "s3")])).unwrap();
        let a = &m.components["a"];
        assert_eq!(a.variables["s"], "s3");
        assert_eq!(a.variables["g"], "hi, world");
        assert_eq!(m.triggers.len(), 2);
        assert!(m.triggers[1].route.is_none());
    }

    #[test]
    fn missing_required_variable_names_the_env_var() {
        let err = Manifest::parse(APP, Path::new("."), &env(&[])).unwrap_err();
        assert!(
            format!("{err:#}").contains("SPIN_VARIABLE_SECRET"),
            "{err:#}"
        );
    }

    #[test]
    fn mounts_directories_and_refuses_other_files_entries() {
        let e = env(&[("SPIN_VARIABLE_SECRET", "x")]);
        let with = |files: &str| {
            APP.replace(
                "key_value_stores = [\"default\"]\n",
                &format!("key_value_stores = [\"default\"]\nfiles = {files}\n"),
            )
        };
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let m = Manifest::parse(
            &with(r#"[{ source = "src", destination = "/src" }]"#),
            here,
            &e,
        )
        .unwrap();
        assert_eq!(
            m.components["a"].files,
            vec![FileMount {
                source: here.join("src"),
                destination: "/src".into()
            }]
        );
        for (files, says) in [
            (r#"["src/*.rs"]"#, "source = "),
            (
                r#"[{ source = "nope", destination = "/x" }]"#,
                "not a directory",
            ),
            (r#"[{ source = "src", destination = "x" }]"#, "absolute"),
        ] {
            let err = Manifest::parse(&with(files), here, &e).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{files}: {err:#}");
        }
    }

    #[test]
    fn refuses_unknown_components() {
        let bad = APP.replace("component = \"a\"\n[[", "component = \"zz\"\n[[");
        let err = Manifest::parse(&bad, Path::new("."), &env(&[("SPIN_VARIABLE_SECRET", "x")]))
            .unwrap_err();
        assert!(format!("{err:#}").contains("zz"));
    }

    #[test]
    fn refuses_undeclared_template_variable() {
        let bad = APP.replace("{{ greeting }}", "{{ nope }}");
        let err = Manifest::parse(&bad, Path::new("."), &env(&[("SPIN_VARIABLE_SECRET", "x")]))
            .unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }
}
