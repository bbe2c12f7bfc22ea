//! Spin variables: application variables (`[variables]`) take their values from
//! `SPIN_VARIABLE_<NAME>` environment variables (Spin's environment provider) or
//! their default; component variables are templates over them, and are what a
//! component reads through `fermyon:spin/variables` or `wasi:config/store`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::bindings::fermyon::spin::variables as spin_variables;
use crate::bindings::wasi::config::store as wasi_config;
use crate::state::RequestState;

/// Resolved application variables.
#[derive(Debug, Clone, Default)]
pub struct Variables(BTreeMap<String, String>);

impl Variables {
    /// `declared`: name → (default, required, secret).
    pub fn resolve(
        declared: &BTreeMap<String, (Option<String>, bool, bool)>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Variables> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for (name, (default, required, secret)) in declared {
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            match env(&env_name).or_else(|| default.clone()) {
                // An empty secret signs and admits anything: never served
                // (stricter than Spin, which would run; an app that runs here
                // still runs there).
                Some(v) if *secret && v.trim().is_empty() => bail!(
                    "the secret variable `{name}` is empty: set {env_name} to a random value \
                     (e.g. `openssl rand -hex 32`)"
                ),
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if *required => missing.push(env_name),
                None => {}
            }
        }
        if !missing.is_empty() {
            bail!(
                "required variable(s) have no value: set {} in the environment",
                missing.join(", ")
            );
        }
        Ok(Variables(values))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Expand `{{ name }}` references to application variables.
pub fn expand_template(template: &str, vars: &Variables) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unclosed `{{{{` in `{template}`");
        };
        let name = after[..end].trim();
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => bail!(
                "`{template}` refers to variable `{name}`, which is not declared in [variables] or has no value"
            ),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl spin_variables::Host for RequestState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, spin_variables::Error>> {
        Ok(match self.component.variables.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(spin_variables::Error::Undefined(format!(
                "no variable `{name}` for component `{}`",
                self.component.id
            ))),
        })
    }
}

impl wasi_config::Host for RequestState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, wasi_config::Error>> {
        Ok(Ok(self.component.variables.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, wasi_config::Error>> {
        Ok(Ok(self
            .component
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_templates() {
        let mut d = BTreeMap::new();
        d.insert("a".to_string(), (Some("x".to_string()), false, false));
        let v = Variables::resolve(&d, &|_| None).unwrap();
        assert_eq!(
            expand_template("pre {{ a }} {{a}}.", &v).unwrap(),
            "pre x x."
        );
        assert!(expand_template("{{ b }}", &v).is_err());
        assert!(expand_template("{{ a", &v).is_err());
    }

    #[test]
    fn environment_overrides_default() {
        let mut d = BTreeMap::new();
        d.insert("a".to_string(), (Some("x".to_string()), false, false));
        let v =
            Variables::resolve(&d, &|k| (k == "SPIN_VARIABLE_A").then(|| "y".to_string())).unwrap();
        assert_eq!(v.get("a"), Some("y"));
    }
}
