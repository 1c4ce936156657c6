//! The map in `src/lib.rs` says dependencies between the top-level modules point one way. This
//! test reads the sources and holds the code to it: no module may reach, through any chain of
//! `crate::` paths outside tests and comments, back to itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn module_of(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let name = first.as_os_str().to_string_lossy().into_owned();
    name.strip_suffix(".rs").map(str::to_owned).unwrap_or(name)
}

/// The code of a file the build of the library sees: comments and `#[cfg(test)]` parts left out.
fn code_of(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    before_tests
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module `code` names: `crate::x…` and `use crate::{x…, y…}`.
fn named_modules(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let words: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let inside = group.split('}').next().unwrap_or_default();
            inside
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect()
        } else {
            rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .take(1)
                .collect()
        };
        named.extend(
            words
                .into_iter()
                .filter(|w| modules.contains(*w))
                .map(str::to_owned),
        );
    }
    named
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut folders = vec![src.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let module = module_of(&src, file);
        if !modules.contains(&module) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let needs = graph.entry(module.clone()).or_default();
        needs.extend(
            named_modules(&code, &modules)
                .into_iter()
                .filter(|m| *m != module),
        );
    }
    graph
}

/// A chain from `from` back to `to`, if there is one.
fn path_between(
    graph: &Graph,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_owned()]);
    }
    for next in graph.get(from).into_iter().flatten() {
        if seen.insert(next.clone())
            && let Some(mut rest) = path_between(graph, next, to, seen)
        {
            rest.insert(0, from.to_owned());
            return Some(rest);
        }
    }
    None
}

#[test]
fn no_module_reaches_back_to_itself() {
    let graph = graph();
    assert!(graph.len() > 15, "the walk found the modules: {graph:?}");
    assert!(
        graph["pipeline"].contains("store"),
        "the walk sees `crate::` paths"
    );
    let mut cycles = Vec::new();
    for (module, needs) in &graph {
        for need in needs {
            if let Some(back) = path_between(&graph, need, module, &mut BTreeSet::new()) {
                cycles.push(format!("{module} -> {}", back.join(" -> ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_lowest_layers_need_nothing_above_them() {
    let graph = graph();
    let allowed = |module: &str| -> &[&str] {
        match module {
            "model" | "text" | "shutdown" | "sites" => &[],
            "lifecycle" => &["model"],
            "store" => &["lifecycle", "model", "sites"],
            "verify" => &["model", "text"],
            _ => unreachable!(),
        }
    };
    for module in [
        "model",
        "text",
        "shutdown",
        "sites",
        "lifecycle",
        "store",
        "verify",
    ] {
        let extra: Vec<&String> = graph[module]
            .iter()
            .filter(|m| !allowed(module).contains(&m.as_str()))
            .collect();
        assert!(extra.is_empty(), "{module} needs {extra:?}");
    }
}
