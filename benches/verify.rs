//! `cargo bench --bench verify`: verification + extraction throughput on realistic pages
//! (30 KB and 300 KB blog pages, 40 KB and 300 KB articles in e-content, and the fixtures in
//! `benches/fixtures/`: a WordPress post page and an IndieWeb post with its comments), and
//! rendering a 10,000-mention Atom feed.
//! Goals: the link check (parse + find the link) ≥ 100 MB/s of HTML per core (issue 2);
//! verify + extract (microformats, excerpt, sanitizing) ≥ 60 MB/s (issue 6); render 10,000
//! entries in < 50 ms.

use backfeed::model::{Author, Kind, Mention, MentionType, Status};
use backfeed::publish::{FeedMeta, Format, PostInfo};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use url::Url;

const TARGET: &str = "https://blog.example/2024/hello/";

/// A blog page of about `size` bytes: header, navigation, many paragraphs with links, comments,
/// a script, and an h-entry near the end that links to the target.
pub fn page(size: usize) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>A post about things</title>\
         <link rel=\"stylesheet\" href=\"/s.css\"><script>window.x = '<a href=\"https://blog.example/\">';</script></head>\
         <body><header><nav><a href=\"/\">Home</a> <a href=\"/about\">About</a> <a href=\"/archive\">Archive</a></nav></header><main>",
    );
    let mut i = 0;
    while html.len() < size.saturating_sub(1200) {
        html.push_str(&format!(
            "<p>Paragraph {i} with some <em>emphasis</em>, a <a href=\"https://other{i}.example/path/{i}\">link to elsewhere</a> \
             and plain words that make up the bulk of an article, as real posts do.</p><!-- comment {i} -->\n"
        ));
        i += 1;
    }
    html.push_str(&format!(
        "<article class=\"h-entry\"><h1 class=\"p-name\">Re: Hello</h1>\
         <a class=\"p-author h-card\" href=\"https://alice.example/\"><img class=\"u-photo\" src=\"/me.jpg\" alt=\"\">Alice</a>\
         <time class=\"dt-published\" datetime=\"2024-05-01T10:00:00+02:00\">May 1</time>\
         <div class=\"e-content\"><p>In reply to <a class=\"u-in-reply-to\" href=\"{TARGET}\">Bob's post</a>: nice work.</p></div>\
         </article></main><footer>© Alice</footer></body></html>"
    ));
    html
}

fn mention(i: i64) -> Mention {
    Mention {
        id: i,
        source: format!("https://site{}.example/posts/{i}", i % 500),
        target: format!("https://blog.example/2024/post-{}/", i % 50),
        kind: Kind::Webmention,
        mention_type: MentionType::Reply,
        status: Status::Verified,
        title: Some(format!("Reply number {i} <with> & markup")),
        author: Author { name: Some(format!("Author {i}")), url: Some(format!("https://site{i}.example/")), photo: None },
        published: Some("2024-05-01T10:00:00+02:00".into()),
        excerpt: Some("[…] some words around the link, about a hundred characters on each side, as WordPress shows […]".into()),
        content_html: Some("<p>Nice <em>post</em>, <a href=\"https://x.example/\" rel=\"nofollow ugc\">see</a>.</p>".into()),
        first_seen: "2024-05-01T08:05:12Z".into(),
        verified_at: Some("2024-05-01T08:05:13Z".into()),
        reason: None,
        updated_at: "2024-05-01T08:05:13Z".into(),
        final_url: None,
        imported: None,
        syndication: Vec::new(),
    }
}

/// A typical IndieWeb article of about `size` bytes: the whole article inside the h-entry's
/// `e-content`, a link every ~250 bytes (about 160 in 40 KB), one of them to the target.
pub fn article(size: usize) -> String {
    let mut content = String::new();
    let mut i = 0;
    while content.len() < size.saturating_sub(1500) {
        content.push_str(&format!(
            "<p>Paragraph {i} of the article, with <em>emphasis</em> and <a href=\"https://ref{}.example/notes/{i}\">a reference</a>; \
             more words follow here, as articles have them, and <code>code</code>.</p>\n",
            i % 40
        ));
        if i == 20 {
            content.push_str(&format!(
                "<p>As <a href=\"{TARGET}\">Bob wrote</a>, this matters.</p>\n"
            ));
        }
        i += 1;
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>An article</title></head><body>\
         <header><nav><a href=\"/\">Home</a></nav></header>\
         <article class=\"h-entry\"><h1 class=\"p-name\">An article</h1>\
         <a class=\"p-author h-card\" href=\"https://alice.example/\">Alice</a>\
         <time class=\"dt-published\" datetime=\"2024-05-01T10:00:00Z\">May 1</time>\
         <div class=\"e-content\">{content}</div></article><footer>© Alice</footer></body></html>"
    )
}

/// A page from `benches/fixtures/`, linking to the target where it says `{{TARGET}}`.
fn fixture(html: &str) -> String {
    html.replace("{{TARGET}}", TARGET)
}

fn bench_verify(c: &mut Criterion) {
    let page_url = Url::parse("https://alice.example/posts/7").unwrap();
    let keys = vec![backfeed::model::match_key(TARGET).unwrap()];
    let mut group = c.benchmark_group("verify");
    for (name, html) in [
        ("30KB", page(30_000)),
        ("300KB", page(300_000)),
        ("article 40KB", article(40_000)),
        ("article 300KB", article(300_000)),
        (
            "WordPress page",
            fixture(include_str!("fixtures/wordpress.html")),
        ),
        (
            "page with comments",
            fixture(include_str!("fixtures/comments.html")),
        ),
    ] {
        assert!(matches!(
            backfeed::verify::verify_html(&html, &page_url, &keys),
            backfeed::model::Outcome::Verified(_)
        ));
        group.throughput(Throughput::Bytes(html.len() as u64));
        group.bench_function(format!("verify+extract {name}"), |b| {
            b.iter(|| backfeed::verify::verify_html(black_box(&html), &page_url, &keys))
        });
        group.bench_function(format!("link check {name}"), |b| {
            b.iter(|| {
                let page = backfeed::verify::Page::parse(black_box(&html), &page_url).unwrap();
                backfeed::verify::find_link(&page, &keys).is_some()
            })
        });
        group.bench_function(format!("html5ever parse only {name}"), |b| {
            b.iter(|| scraper::Html::parse_document(black_box(&html)))
        });
    }
    group.finish();
}

fn bench_render(c: &mut Criterion) {
    let mentions: Vec<Mention> = (0..10_000).map(mention).collect();
    let posts = PostInfo::default();
    let meta = FeedMeta {
        title: "Mentions".into(),
        self_url: "https://m.example/mentions.atom".into(),
        home_url: "https://blog.example/".into(),
        id_host: "blog.example".into(),
        id_suffix: "mentions".into(),
    };
    let mut group = c.benchmark_group("render");
    group.sample_size(20);
    group.bench_function("atom 10000 entries", |b| {
        b.iter(|| Format::Atom.render(&meta, black_box(&mentions), &posts))
    });
    group.bench_function("rss 10000 entries", |b| {
        b.iter(|| Format::Rss.render(&meta, black_box(&mentions), &posts))
    });
    group.bench_function("jsonfeed 10000 entries", |b| {
        b.iter(|| Format::JsonFeed.render(&meta, black_box(&mentions), &posts))
    });
    group.finish();
}

/// What a hostile page costs before it is refused: markup that nests without closing (the
/// tree builder's work grows with the square of its length) and a 2 MB page of `<br>`.
fn bench_hostile(c: &mut Criterion) {
    let page_url = Url::parse("https://hostile.example/").unwrap();
    let keys = vec![backfeed::model::match_key(TARGET).unwrap()];
    let link = format!("<a href=\"{TARGET}\">x</a>");
    let mut group = c.benchmark_group("hostile");
    group.sample_size(10);
    for (name, unit, n) in [
        ("div/ x50000 (300 KB)", "<div/>", 50_000),
        ("div/ x350000 (2 MB)", "<div/>", 350_000),
        ("div-i x50000", "<div></i>", 50_000),
        ("a-i x50000", "<a><i>", 50_000),
        ("br x500000 (2 MB)", "<br>", 500_000),
    ] {
        let html = format!("{link}{}", unit.repeat(n));
        group.bench_function(name, |b| {
            b.iter(|| backfeed::verify::verify_html(black_box(&html), &page_url, &keys))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verify, bench_render, bench_hostile);
criterion_main!(benches);
