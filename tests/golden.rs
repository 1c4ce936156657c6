//! Golden tests for reading sources: each `fixtures/html/NAME.html` is served by the fixture web
//! (with `{POST}` and `{WEB}` filled in), verified through the real binary, and what backfeed
//! read — type, title, author, published, excerpt, content — must equal `NAME.json`.
//! `about.html` is not a source: it is the author page the authorship algorithm fetches.
//! After a deliberate change, `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the JSON
//! files; review the diff before committing it.

mod support;
use support::*;

#[test]
fn fixture_pages_read_as_their_golden_json() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/html");
    let web = home.web.url("");
    let post = home.post_url();
    let fill = |bytes: &[u8]| -> Vec<u8> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        if text.contains('\u{fffd}') {
            // Not UTF-8 (the ISO-8859-1 fixture): replace the ASCII placeholders byte-wise.
            let mut out = bytes.to_vec();
            for (from, to) in [("{POST}", post.as_str()), ("{WEB}", web.as_str())] {
                while let Some(at) = out.windows(from.len()).position(|w| w == from.as_bytes()) {
                    out.splice(at..at + from.len(), to.bytes());
                }
            }
            return out;
        }
        text.replace("{POST}", &post)
            .replace("{WEB}", &web)
            .into_bytes()
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".html")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    for name in &names {
        home.web.set(
            &format!("/golden/{name}"),
            Fixture::with_type(
                "text/html",
                &fill(&std::fs::read(dir.join(format!("{name}.html"))).unwrap()),
            ),
        );
    }
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let mut differences = Vec::new();
    for name in names.iter().filter(|n| n.as_str() != "about") {
        let source = home.web.url(&format!("/golden/{name}"));
        let (code, out, err) = home.run(&["submit", &source, &post]);
        assert_eq!(code, 0, "{name} did not verify: {out}{err}");
        let m = home
            .mentions()
            .into_iter()
            .find(|m| m["source"] == source.as_str())
            .unwrap();
        let actual = serde_json::json!({
            "type": m["type"], "title": m["title"], "author": m["author"], "published": m["published"],
            "excerpt": m["excerpt"], "content_html": m["content_html"],
        });
        let actual_text = serde_json::to_string_pretty(&actual)
            .unwrap()
            .replace(&post, "{POST}")
            .replace(&web, "{WEB}");
        let golden_path = dir.join(format!("{name}.json"));
        if update {
            std::fs::write(&golden_path, format!("{actual_text}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden_path).unwrap_or_default();
        if expected.trim() != actual_text.trim() {
            differences.push(format!(
                "{name}:\nexpected {expected}\nactual   {actual_text}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
}
