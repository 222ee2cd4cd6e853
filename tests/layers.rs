//! What docs/architecture.md states of the code's shape: no two files of
//! `src/` import each other, each layer imports only the layers under it,
//! and no lock guards any state. Reads the paths (`crate::…`, `super::…`)
//! in every source file, outside comments and unit-test modules, and
//! resolves them to the files that define them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of `src/`, by path (`actors::process`), with its source.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).ok()?.with_extension("");
            let name = relative.to_str()?.replace('/', "::");
            // The binary is not part of the library's layers.
            if name == "main" || name.starts_with("bin::") {
                return None;
            }
            let name = if name == "lib" { String::new() } else { name };
            Some((name, std::fs::read_to_string(&path).ok()?))
        })
        .collect()
}

/// `source` without comments and without its `#[cfg(test)] mod tests`.
fn code(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a path written in `module` names: the longest prefix of it
/// that is a module. Paths into `use` groups (`super::{a, b}`) name each
/// item of the group.
fn targets(module: &str, source: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut paths = Vec::new();
    let text = code(source);
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let starts = ["crate::", "super::"].iter().any(|p| rest.starts_with(p))
            && (at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_'));
        if !starts {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(':').to_owned();
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |c| end + c);
            for item in rest[end + 1..close].split(',') {
                let item = item.trim().split("::").next().unwrap_or("").trim();
                if !item.is_empty() && item != "self" {
                    paths.push(format!("{path}::{item}"));
                }
            }
            paths.push(path);
        } else {
            paths.push(path);
        }
        at += end.max(1);
    }
    let here: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    let mut found = BTreeSet::new();
    for path in paths {
        let mut parts = path.split("::").peekable();
        let mut segments: Vec<String> = match parts.peek() {
            Some(&"crate") => {
                parts.next();
                Vec::new()
            }
            _ => {
                let mut base: Vec<String> = here.iter().map(|s| s.to_string()).collect();
                while parts.peek() == Some(&"super") {
                    parts.next();
                    base.pop();
                }
                base
            }
        };
        segments.extend(parts.map(str::to_owned));
        for n in (1..=segments.len()).rev() {
            let candidate = segments[..n].join("::");
            if known.contains(&candidate) {
                // A module may name its own children and its ancestors.
                let related = candidate == module
                    || module.starts_with(&format!("{candidate}::"))
                    || candidate.starts_with(&format!("{module}::"));
                if !related {
                    found.insert(candidate);
                }
                break;
            }
        }
    }
    found
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, source)| (module.clone(), targets(module, source, &known)))
        .collect()
}

#[test]
fn no_two_files_import_each_other() {
    let imports = imports();
    assert!(imports.len() > 50, "found only {} modules", imports.len());
    let mut cycles = Vec::new();
    for (a, targets) in &imports {
        for b in targets {
            if a < b && imports.get(b).is_some_and(|back| back.contains(a)) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other: {cycles:#?}"
    );
}

/// The layer of a module, as the table in docs/architecture.md gives it.
fn layer(module: &str) -> u8 {
    let top = module.split("::").next().unwrap_or("");
    match module {
        "messages::handle_id" | "error::deny_rule" => 0,
        "error" => 1,
        _ => match top {
            "messages" | "clock" => 2,
            "os" => 3,
            "policy" | "config" => 4,
            "actors" => 5,
            "registry" => 6,
            "json" | "cluster" => 7,
            // The crate root re-exports every layer.
            _ => 8,
        },
    }
}

#[test]
fn each_layer_imports_only_the_layers_under_it() {
    let mut upward = Vec::new();
    for (module, targets) in imports() {
        for target in targets {
            let (from, to) = (layer(&module), layer(&target));
            // Protocols may use each other's error kinds: same layer.
            if to > from {
                upward.push(format!(
                    "{module} (layer {from}) imports {target} (layer {to})"
                ));
            }
        }
    }
    assert!(upward.is_empty(), "imports of a higher layer: {upward:#?}");
}

/// docs/architecture.md: no `Mutex` or `RwLock` guards any state of
/// procward's own; state lives in an actor or is owned by one task.
#[test]
fn no_lock_guards_any_state() {
    let locked: Vec<String> = modules()
        .into_iter()
        .filter(|(_, source)| {
            let code = code(source);
            code.contains("Mutex") || code.contains("RwLock")
        })
        .map(|(module, _)| module)
        .collect();
    assert!(locked.is_empty(), "modules with a lock: {locked:?}");
}
