//! The crate's top-level modules form layers, and a module may import only from layers below
//! its own: data flows one way (http -> graphql -> use cases -> store -> domain) and the graph
//! has no cycle. This test reads `src/` and fails on the first import that points upward or
//! sideways, naming the file, so a new arrow is a decision rather than an accident.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first. A module imports only from layers strictly below its own.
const LAYERS: &[&[&str]] = &[
    // What everything speaks: values, errors, counters, timestamps as text.
    &["domain", "error", "metrics", "rfc3339"],
    // Leaves that know only the domain: settings, sealing, app files, egress, rows.
    &["config", "crypto", "catalog", "outbound", "store", "access_cache"],
    // Protocols and the event bus, still without use cases.
    &["oauth", "verify", "oidc", "telemetry", "events"],
    &["state"],
    // Use cases, each above what it builds on.
    &["access"],
    &["flows", "teams"],
    &["webhooks", "bootstrap"],
    &["connections"],
    &["proxy", "scheduler"],
    // The ways in.
    &["graphql"],
    &["http"],
    &["startup"],
];

/// The crate roots declare modules and wire them up; they are above every layer.
const ROOTS: &[&str] = &["lib.rs", "main.rs"];

#[test]
fn top_level_modules_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, modules)| modules.iter().map(move |module| (*module, layer)))
        .collect();
    let mut violations = Vec::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if ROOTS.contains(&relative.as_str()) {
            continue;
        }
        let module = relative.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        let Some(&own) = layer_of.get(module.as_str()) else {
            violations.push(format!("{relative}: module `{module}` is in no layer; add it to LAYERS"));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for imported in imported_modules(production_part(&text)) {
            if imported == module {
                continue;
            }
            match layer_of.get(imported.as_str()) {
                Some(&theirs) if theirs < own => {}
                Some(_) => violations
                    .push(format!("{relative}: `{module}` imports `{imported}`, which is not below it")),
                None => {
                    violations.push(format!("{relative}: imports `crate::{imported}`, which is in no layer"))
                }
            }
        }
    }
    assert!(violations.is_empty(), "the module graph must stay layered:\n{}", violations.join("\n"));
}

#[test]
fn the_import_reader_sees_grouped_and_nested_paths() {
    let text = "use crate::{access, store::{self, x}};\nfn f() { crate::metrics::count(); }\n";
    let mut found = imported_modules(text);
    found.sort();
    assert_eq!(found, ["access", "metrics", "store"]);
    assert_eq!(production_part("a\n#[cfg(test)]\nmod tests { crate::http }"), "a\n");
}

/// Tests inside a module may reach anywhere; only what ships is layered.
fn production_part(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests").map_or(text, |at| &text[..at])
}

/// The first segment of every `crate::` path, including each of `crate::{a, b::{c}}`.
fn imported_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(first_segment(&item));
                        item.clear();
                    }
                    _ => item.push(c),
                }
            }
        } else {
            found.push(first_segment(rest));
        }
    }
    found.retain(|name| !name.is_empty());
    found.dedup();
    found
}

fn first_segment(path: &str) -> String {
    path.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}
