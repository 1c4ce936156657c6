//! The microformats community's parser test suite (tests/data/microformats-v2, copied from the community's repository; CC0): every
//! case in h-entry/, h-card/, h-feed/ and mixed/ is parsed with backfeed's mf2 reader and the
//! properties backfeed reads are compared with the expected parse (text compared with
//! whitespace collapsed, as backfeed displays it). Skipped, saying so, when the folder is absent.

use serde_json::Value;
use std::path::Path;

/// The properties backfeed reads from h-entry and h-card.
const READ: &[&str] = &[
    "name",
    "content",
    "summary",
    "published",
    "updated",
    "author",
    "url",
    "photo",
    "in-reply-to",
    "like-of",
    "repost-of",
    "bookmark-of",
    "category",
    "uid",
    "nickname",
    "note",
    "email",
];

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Compares the parts of `expected` that backfeed reads; returns the first difference.
fn compare(path: &str, expected: &Value, actual: &Value) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(e), Value::String(a)) => {
            if collapse(e) == collapse(a) {
                Ok(())
            } else {
                Err(format!("{path}: expected {e:?}, got {a:?}"))
            }
        }
        (Value::Object(e), Value::Object(a)) if e.contains_key("type") => {
            compare(
                &format!("{path}.type"),
                &e["type"],
                a.get("type").unwrap_or(&Value::Null),
            )?;
            if let Some(v) = e.get("value") {
                compare(
                    &format!("{path}.value"),
                    v,
                    a.get("value").unwrap_or(&Value::Null),
                )?;
            }
            let (ep, ap) = (
                &e["properties"],
                a.get("properties").cloned().unwrap_or_default(),
            );
            for key in READ {
                let (ev, av) = (ep.get(*key), ap.get(*key));
                match (ev, av) {
                    (None, None) => {}
                    (Some(ev), Some(av)) => compare(&format!("{path}.{key}"), ev, av)?,
                    (ev, av) => return Err(format!("{path}.{key}: expected {ev:?}, got {av:?}")),
                }
            }
            let empty = Value::Array(vec![]);
            compare(
                &format!("{path}.children"),
                e.get("children").unwrap_or(&empty),
                a.get("children").unwrap_or(&empty),
            )
        }
        (Value::Object(e), Value::Object(a)) => {
            for key in ["value", "html", "alt"] {
                if let Some(ev) = e.get(key) {
                    let av = a.get(key).unwrap_or(&Value::Null);
                    let (ev, av) = if key == "html" {
                        (
                            Value::String(ev.as_str().unwrap_or("").replace(['\n', ' '], "")),
                            Value::String(av.as_str().unwrap_or("").replace(['\n', ' '], "")),
                        )
                    } else {
                        (ev.clone(), av.clone())
                    };
                    compare(&format!("{path}.{key}"), &ev, &av)?;
                }
            }
            Ok(())
        }
        // A photo given as {value, alt} where we give the URL: compare the URL.
        (Value::Object(e), Value::String(_)) if e.contains_key("alt") => {
            compare(path, &e["value"], actual)
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected {} values {e:?}, got {} {a:?}",
                    e.len(),
                    a.len()
                ));
            }
            e.iter()
                .zip(a)
                .enumerate()
                .try_for_each(|(i, (e, a))| compare(&format!("{path}[{i}]"), e, a))
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

#[test]
fn microformats_suite_cases_parse_as_expected() {
    // The suite's data lives in the repo (CC0, see its LICENSE): the test runs in any clone.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/microformats-v2");
    let base = url::Url::parse("http://example.com/").unwrap();
    let (mut passed, mut failures) = (0, Vec::new());
    for dir in ["h-entry", "h-card", "h-feed", "mixed"] {
        let mut cases: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        cases.sort();
        for html_path in cases
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "html"))
        {
            let html = std::fs::read_to_string(html_path).unwrap();
            let expected: Value = serde_json::from_str(
                &std::fs::read_to_string(html_path.with_extension("json")).unwrap(),
            )
            .unwrap();
            let items: Vec<Value> = backfeed::verify::mf2::parse_document(&html, &base)
                .iter()
                .map(|i| i.to_json())
                .collect();
            let name = format!("{dir}/{}", html_path.file_stem().unwrap().to_string_lossy());
            match compare(&name, &expected["items"], &Value::Array(items)) {
                Ok(()) => passed += 1,
                Err(e) => failures.push(e),
            }
        }
    }
    eprintln!(
        "microformats suite: {passed} passed, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        passed + failures.len(),
        failures.join("\n")
    );
}
