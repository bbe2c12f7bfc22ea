//! `spin.toml` and the components' dispatch agree: every public route of a
//! component in `spin.toml` is in `revisit_shared::routes`, and the other way
//! round; components dispatch on those constants, never on a literal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use revisit_shared::routes;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Each component's public routes in `spin.toml`, and the components that
/// have a private one.
fn manifest_routes() -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let text = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let mut public: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut private = BTreeSet::new();
    for trigger in manifest["trigger"]["http"].as_array().unwrap() {
        let component = trigger["component"].as_str().unwrap().to_string();
        match &trigger["route"] {
            toml::Value::String(route) => {
                public.entry(component).or_default().insert(route.clone());
            }
            toml::Value::Table(t) if t.get("private") == Some(&toml::Value::Boolean(true)) => {
                private.insert(component);
            }
            other => panic!("a route this test does not know: {other:?}"),
        }
    }
    (public, private)
}

#[test]
fn the_route_table_is_spin_toml() {
    let (public, private) = manifest_routes();
    let table: BTreeMap<String, BTreeSet<String>> = routes::COMPONENTS
        .iter()
        .map(|(c, r)| (c.to_string(), r.iter().map(|r| r.to_string()).collect()))
        .collect();
    assert_eq!(table, public);
    assert_eq!(
        private,
        BTreeSet::from([
            "low-score-escalator".to_string(),
            "supervisor-console".to_string()
        ]),
        "private routes: the escalator's hand-off and the console's development outbox"
    );
    assert!(escalator_url().ends_with(routes::escalator::ESCALATIONS_PATH));
}

/// The hand-off URL the shell uses (the `spin` feature is wasm-only, so it is
/// read from the source here).
fn escalator_url() -> String {
    let text = std::fs::read_to_string(root().join("shared/src/spin.rs")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("pub const ESCALATOR_URL"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn components_dispatch_on_the_table_not_on_literals() {
    for (component, _) in routes::COMPONENTS {
        let path = root().join(format!("functions/{component}/src/lib.rs"));
        let source = std::fs::read_to_string(path).unwrap();
        let start = source
            .find("fn handle(")
            .unwrap_or_else(|| panic!("{component}: no handle"));
        let end = start + source[start..].find("\n}\n").unwrap();
        let dispatch = &source[start..end];
        assert!(
            !dispatch.contains("(\"/"),
            "{component} dispatches on a route literal; use revisit_shared::routes:\n{dispatch}"
        );
    }
}
