//! One conversation, wherever it happens: the same reaction seen through several channels (a
//! toot and Brid.gy's copy of it, a blog reply and its syndicated copy) is one mention carrying
//! every address it was seen at, counted once; two people are never merged.

mod support;
use support::*;

/// An h-entry replying to the post, by `author` (a page URL and name), with `extra` markup
/// (a `u-url` or `u-syndication`).
fn reply(home: &Home, path: &str, author: (&str, &str), extra: &str) -> String {
    home.source(
        path,
        &format!(
            r#"<div class="h-entry"><a class="p-author h-card" href="{}">{}</a>
            <a class="u-in-reply-to" href="{}">re</a><p class="e-content">Same words.</p>{extra}</div>"#,
            home.web.url(author.0),
            author.1,
            home.post_url()
        ),
    )
}

fn count(home: &Home) -> serde_json::Value {
    let daemon = home.serve();
    let target = serde_urlencoded::to_string([("target", home.post_url())]).unwrap();
    let n: serde_json::Value = client()
        .get(daemon.url(&format!("/api/count.json?{target}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    n["count"].clone()
}

#[test]
fn a_copy_that_names_its_original_is_one_mention_with_the_original_kept() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let alice = ("/@alice", "Alice");
    let original = reply(&home, "/@alice/1", alice, "");
    // Brid.gy's copy of it names the original as its u-url.
    let copy = reply(
        &home,
        "/bridgy/comment/1",
        alice,
        &format!(r#"<a class="u-url" href="{original}">original</a>"#),
    );
    home.ok(&["submit", &copy, &home.post_url()]);
    home.ok(&["submit", &original, &home.post_url()]);
    assert_eq!(
        home.status_of(&original),
        "verified",
        "the original is kept"
    );
    assert_eq!(home.status_of(&copy), "deleted");
    let kept = home
        .mentions()
        .into_iter()
        .find(|m| m["source"] == original.as_str())
        .unwrap();
    assert_eq!(kept["syndication"], serde_json::json!([copy]), "{kept}");
    let reason = home
        .sql()
        .query_text("SELECT reason FROM mentions WHERE source = ?1", &[&copy])
        .unwrap();
    assert!(reason.starts_with("same reaction as mention #"), "{reason}");
    assert_eq!(count(&home), 1, "counted once");
}

#[test]
fn a_blog_reply_and_its_syndicated_copy_keep_the_blog_reply() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let bob = ("/bob/", "Bob");
    let toot = reply(&home, "/@bob/5", bob, "");
    let blog = reply(
        &home,
        "/bob/replies/5",
        bob,
        &format!(r#"<a class="u-syndication" href="{toot}">also on Mastodon</a>"#),
    );
    // The copy arrives first (the Mastodon source found it), the original later.
    home.ok(&["submit", &toot, &home.post_url()]);
    home.ok(&["submit", &blog, &home.post_url()]);
    assert_eq!(home.status_of(&blog), "verified");
    assert_eq!(home.status_of(&toot), "deleted");
    let kept = home
        .mentions()
        .into_iter()
        .find(|m| m["source"] == blog.as_str())
        .unwrap();
    assert_eq!(kept["syndication"], serde_json::json!([toot]), "{kept}");
    // The API shows where else it lives.
    let daemon = home.serve();
    let api: serde_json::Value = client()
        .get(daemon.url("/api/mentions.jf2"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let children = api["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{api}");
    assert_eq!(children[0]["syndication"], serde_json::json!([toot]));
    // And JSON Feed, in its extension object (JSON Feed's own keys are its spec's).
    let feed: serde_json::Value = client()
        .get(daemon.url("/mentions.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(feed["items"].as_array().unwrap().len(), 1, "{feed}");
    assert_eq!(
        feed["items"][0]["_backfeed"]["syndication"],
        serde_json::json!([toot])
    );
}

#[test]
fn two_people_pointing_at_one_page_are_not_merged() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let original = reply(&home, "/@alice/2", ("/@alice", "Alice"), "");
    // Carol's page (quoting Alice's, say) names it as its u-url: still Carol's own reply.
    let carol = reply(
        &home,
        "/carol/1",
        ("/carol/", "Carol"),
        &format!(r#"<a class="u-url" href="{original}">quoted</a>"#),
    );
    home.ok(&["submit", &original, &home.post_url()]);
    home.ok(&["submit", &carol, &home.post_url()]);
    assert_eq!(home.status_of(&original), "verified");
    assert_eq!(home.status_of(&carol), "verified");
    assert_eq!(count(&home), 2);
}
