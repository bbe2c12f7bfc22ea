//! Generates the phone-number → country table (`$OUT_DIR/phone_regions.rs`)
//! from libphonenumber's published metadata (`data/phone/PhoneNumberMetadata.xml`).
//!
//! At run time a number's country is found as libphonenumber finds it, without
//! its regular expressions: the calling code names the country, unless several
//! countries share it (+1, +7, +44, ...). For those, libphonenumber tries each
//! country in order (the main one first): a country with `leadingDigits` takes
//! the number when they match its start; any other takes it when the number
//! is valid there. This script walks the national numbers digit by digit,
//! following each pattern as a DFA, until the first digits alone decide the
//! country (the North American area codes, for instance), and writes those
//! prefixes: a few KB instead of the whole metadata and a regex engine.
//!
//! `tests/phone_table.rs`-style checks live in `market.rs`: the table agrees
//! with the `phonenumber` crate on a large sample of valid numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

const METADATA: &str = "data/phone/PhoneNumberMetadata.xml";
/// The number types libphonenumber checks for validity.
const TYPES: [&str; 10] = [
    "fixedLine",
    "mobile",
    "tollFree",
    "premiumRate",
    "sharedCost",
    "personalNumber",
    "voip",
    "pager",
    "uan",
    "voicemail",
];
/// How many national digits the walk looks at before it settles for the
/// first country still possible.
const MAX_DEPTH: usize = 7;

/// A pattern that may match the start of a national number.
struct Pattern {
    dfa: dense::DFA<Vec<u32>>,
    prefix: regex::Regex,
}

impl Pattern {
    fn new(source: &str) -> Pattern {
        let source: String = source.split_whitespace().collect();
        let dfa = dense::Builder::new()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .match_kind(MatchKind::All),
            )
            .build(&source)
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        let prefix = regex::Regex::new(&format!("^(?:{source})")).expect("valid pattern");
        Pattern { dfa, prefix }
    }

    /// Some start of `digits` already matches.
    fn matched(&self, digits: &str) -> bool {
        self.prefix.is_match(digits)
    }

    /// Some number starting with `digits` could match (at its start).
    fn alive(&self, digits: &str) -> bool {
        if self.matched(digits) {
            return true;
        }
        let config = start::Config::new().anchored(Anchored::Yes);
        let mut state = self.dfa.start_state(&config).expect("anchored start");
        for b in digits.bytes() {
            state = self.dfa.next_state(state, b);
            if self.dfa.is_dead_state(state) {
                return false;
            }
        }
        true
    }
}

struct Territory {
    id: String,
    code: u16,
    main: bool,
    leading_digits: Option<Pattern>,
    general: Option<Pattern>,
    types: Vec<Pattern>,
}

impl Territory {
    /// A valid number of this territory could start with `digits`.
    fn could_be_valid(&self, digits: &str) -> bool {
        self.general.as_ref().is_some_and(|g| g.alive(digits))
            && self.types.iter().any(|t| t.alive(digits))
    }
}

/// What the first digits tell about a number shared by `regions`.
enum Verdict<'a> {
    /// Every valid number starting so belongs to this region.
    Region(&'a str),
    /// No valid number starts so.
    Nobody,
    /// It depends on the next digits.
    Open,
}

fn verdict<'a>(regions: &'a [&Territory], digits: &str) -> Verdict<'a> {
    for (i, r) in regions.iter().enumerate() {
        match &r.leading_digits {
            Some(l) if l.matched(digits) => return Verdict::Region(&r.id),
            Some(l) if l.alive(digits) => return Verdict::Open,
            Some(_) => continue,
            None if !r.could_be_valid(digits) => continue,
            None => {
                // Valid here or nowhere after it?
                let later_possible = regions[i + 1..].iter().any(|o| match &o.leading_digits {
                    Some(l) => l.alive(digits),
                    None => o.could_be_valid(digits),
                });
                return if later_possible {
                    Verdict::Open
                } else {
                    Verdict::Region(&r.id)
                };
            }
        }
    }
    Verdict::Nobody
}

/// The first region still possible for numbers starting with `digits`.
fn first_possible<'a>(regions: &'a [&Territory], digits: &str) -> Option<&'a str> {
    regions
        .iter()
        .find(|r| match &r.leading_digits {
            Some(l) => l.alive(digits),
            None => r.could_be_valid(digits),
        })
        .map(|r| r.id.as_str())
}

/// Prefixes (national digits) that decide a region other than the main one.
fn walk(regions: &[&Territory], digits: &mut String, out: &mut Vec<(String, String)>) {
    let main = regions[0].id.as_str();
    let decided = match verdict(regions, digits) {
        Verdict::Region(r) => Some(r),
        Verdict::Nobody => return,
        Verdict::Open if digits.len() >= MAX_DEPTH => first_possible(regions, digits),
        Verdict::Open => None,
    };
    match decided {
        Some(r) if r != main => out.push((digits.clone(), r.to_string())),
        Some(_) => {}
        None => {
            for d in b'0'..=b'9' {
                digits.push(d as char);
                walk(regions, digits, out);
                digits.pop();
            }
        }
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')? + at;
    Some(tag[at..end].to_string())
}

/// The `nationalNumberPattern` of the `name` element in a territory's body.
fn descriptor(body: &str, name: &str) -> Option<Pattern> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    let element = &body[start..end];
    let p = element.find("<nationalNumberPattern>")? + "<nationalNumberPattern>".len();
    let q = element[p..].find("</nationalNumberPattern>")? + p;
    Some(Pattern::new(&element[p..q]))
}

fn territories(xml: &str) -> Vec<Territory> {
    let mut found = Vec::new();
    for chunk in xml.split("<territory ").skip(1) {
        let tag_end = chunk.find('>').expect("a territory's tag ends");
        let tag = format!(
            " {}",
            &chunk[..tag_end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
        let body = &chunk[tag_end..chunk.find("</territory>").unwrap_or(chunk.len())];
        let id = attribute(&tag, "id").expect("every territory has an id");
        let code = attribute(&tag, "countryCode")
            .and_then(|c| c.parse().ok())
            .expect("every territory has a calling code");
        found.push(Territory {
            main: attribute(&tag, "mainCountryForCode").as_deref() == Some("true"),
            leading_digits: attribute(&tag, "leadingDigits").map(|l| Pattern::new(&l)),
            general: descriptor(body, "generalDesc"),
            types: TYPES.iter().filter_map(|t| descriptor(body, t)).collect(),
            id,
            code,
        });
    }
    found
}

fn main() {
    println!("cargo:rerun-if-changed={METADATA}");
    println!("cargo:rerun-if-changed=build.rs");
    let xml = std::fs::read_to_string(METADATA).expect("the vendored phone metadata");
    let all = territories(&xml);
    // Regions per calling code, in libphonenumber's order: the main one first,
    // the others as the file lists them.
    let mut by_code: BTreeMap<u16, Vec<&Territory>> = BTreeMap::new();
    for t in &all {
        let list = by_code.entry(t.code).or_default();
        if t.main {
            list.insert(0, t);
        } else {
            list.push(t);
        }
    }
    let mut out =
        String::from("// Generated by build.rs from libphonenumber's metadata. Do not edit.\n\n");
    out.push_str("/// (calling code, its main region; \"001\": not a country)\n");
    out.push_str("pub static CALLING_CODES: &[(u16, &str)] = &[\n");
    for (code, regions) in &by_code {
        writeln!(out, "    ({code}, {:?}),", regions[0].id).unwrap();
    }
    out.push_str("];\n\n");
    out.push_str("/// (calling code, first national digits, region) where a shared calling\n");
    out.push_str("/// code's number belongs to a region other than the main one; sorted.\n");
    out.push_str("pub static SHARED_PREFIXES: &[(u16, &str, &str)] = &[\n");
    for (code, regions) in &by_code {
        if regions.len() < 2 {
            continue;
        }
        let mut prefixes = Vec::new();
        walk(regions, &mut String::new(), &mut prefixes);
        prefixes.sort();
        for (digits, region) in prefixes {
            writeln!(out, "    ({code}, {digits:?}, {region:?}),").unwrap();
        }
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("phone_regions.rs");
    std::fs::write(dest, out).unwrap();
}
