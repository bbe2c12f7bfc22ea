//! The layers of `shared/src` (ARCHITECTURE.md), read from the code itself:
//! - `model` (the nouns) and the leaf modules use no other module of the crate;
//! - rules never see storage: no rule module uses `storage`, `keys`, `flows`
//!   or `spin`; rules that decide return their own refusals, never HTTP errors
//!   (only the parsers at the edge, `event`, `shops` and `signing`, do);
//! - flows are storage-generic: they never use the Spin shell;
//! - no two modules depend on each other, directly or through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules that do key-value I/O or build keys; everything else is a rule
/// (or a noun, or a leaf).
const IO_LAYERS: [&str; 4] = ["storage", "keys", "flows", "spin"];
/// Rule modules that parse or authenticate what comes in: their refusals are
/// HTTP's own (400, 401), so they may use `error`.
const EDGE_PARSERS: [&str; 3] = ["event", "shops", "signing"];
/// Modules that use no other module of the crate.
const LEAVES: [&str; 7] = [
    "model",
    "error",
    "holidays",
    "phone",
    "routes",
    "zone",
    "date_text",
];

/// Each top-level module of `shared/src` with the top-level modules it uses
/// (outside its `#[cfg(test)]` module and comments).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let uses = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if src.join(format!("{name}.rs")).exists() || src.join(&name).is_dir() {
                if name != module {
                    uses.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let graph = module_graph();
    assert!(graph.len() > 20, "the graph was read: {graph:?}");
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(find_cycle(&graph).map(|c| c.len()), Some(4));
}

#[test]
fn leaves_use_no_other_module() {
    let graph = module_graph();
    for leaf in LEAVES {
        assert_eq!(graph[leaf], BTreeSet::new(), "{leaf}");
    }
}

#[test]
fn rules_never_see_storage() {
    let graph = module_graph();
    for (module, uses) in &graph {
        if IO_LAYERS.contains(&module.as_str()) {
            continue;
        }
        let io: Vec<&String> = uses
            .iter()
            .filter(|u| IO_LAYERS.contains(&u.as_str()))
            .collect();
        assert!(
            io.is_empty(),
            "the rule module `{module}` uses {io:?}: move its I/O into a flow (shared/src/flows/)"
        );
    }
}

#[test]
fn deciding_rules_return_their_own_refusals() {
    let graph = module_graph();
    for (module, uses) in &graph {
        if IO_LAYERS.contains(&module.as_str()) || EDGE_PARSERS.contains(&module.as_str()) {
            continue;
        }
        assert!(
            !uses.contains("error"),
            "the rule module `{module}` uses HTTP errors: return a refusal enum, and map it in flows/mod.rs"
        );
    }
}

#[test]
fn flows_never_use_the_spin_shell() {
    let graph = module_graph();
    assert!(!graph["flows"].contains("spin"), "{:?}", graph["flows"]);
    assert!(graph["flows"].contains("storage"));
}
