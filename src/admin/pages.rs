//! The operator's pages as HTML, written with `maud`: its templates are Rust, checked when the
//! program is built, and every string put in them is escaped unless marked otherwise (nothing
//! here is). No script: every action is a form posted with its CSRF token, so the page works
//! with JavaScript off. Remote images (authors' photos) are never loaded here, so looking at the
//! queue tells no source that it was looked at.

use crate::model::{Kind, Mention, MentionType, Status};
use crate::status::StatusReport;
use crate::store::{Decision, SendRecord};
use maud::{DOCTYPE, Markup, html};

/// Which page of the navigation is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Queue,
    Mentions,
    Log,
    Sent,
    Blocks,
    Status,
}

const NAV: [(Nav, &str, &str); 6] = [
    (Nav::Queue, "/admin/", "Queue"),
    (Nav::Mentions, "/admin/mentions", "Mentions"),
    (Nav::Log, "/admin/log", "Log"),
    (Nav::Sent, "/admin/sent", "Sent"),
    (Nav::Blocks, "/admin/blocks", "Blocks"),
    (Nav::Status, "/admin/status", "Status"),
];

/// What every signed-in page needs besides its body.
pub struct Frame<'a> {
    pub site_title: String,
    pub csrf: &'a str,
    /// A line saying what the last action did.
    pub notice: Option<String>,
    /// Mentions waiting for approval, shown beside "Queue".
    pub held: i64,
    /// The sites the host's operator may filter by (empty: one site, or a site's owner).
    pub sites: Vec<String>,
}

fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · backfeed" }
                link rel="stylesheet" href="/admin/admin.css";
            }
            body { (body) }
        }
    }
}

/// A signed-in page: the navigation, the notice, then `body`.
pub fn page(frame: &Frame<'_>, current: Nav, title: &str, body: Markup) -> Markup {
    document(
        title,
        html! {
            header.top {
                div.brand { "backfeed" span.site { (frame.site_title) } }
                nav {
                    @for (nav, href, label) in NAV {
                        a href=(href) aria-current=[(nav == current).then_some("page")] {
                            (label)
                            @if nav == Nav::Queue && frame.held > 0 { " " span.count { (frame.held) } }
                        }
                    }
                }
                form.signout method="post" action="/admin/logout" {
                    (csrf_field(frame.csrf))
                    button.quiet type="submit" { "Sign out" }
                }
            }
            main {
                h1 { (title) }
                @if let Some(notice) = &frame.notice { p.notice role="status" { (notice) } }
                (body)
            }
        },
    )
}

/// The sign-in page.
pub fn sign_in(site_title: &str, csrf: &str, problem: Option<&str>) -> Markup {
    document(
        "Sign in",
        html! {
            main.signin {
                h1 { "backfeed" }
                p.muted { "Mentions of " (site_title) }
                @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
                form method="post" action="/admin/login" {
                    (csrf_field(csrf))
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required autofocus;
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A form of one button that posts `fields` (with the CSRF token and where to come back to).
fn button_form(
    action: &str,
    csrf: &str,
    back: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            input type="hidden" name="back" value=(back);
            @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
            button class=(class) type="submit" { (label) }
        }
    }
}

/// `2026-11-28T12:01:09Z` as `2026-11-28 12:01`.
fn when(stamp: &str) -> String {
    stamp.get(..16).unwrap_or(stamp).replacen('T', " ", 1)
}

/// What a row says a mention is: its title, or for a reaction without one who did what
/// ("Grace Hopper liked this") — never "(untitled)" for an imported like.
fn mention_label(m: &Mention) -> String {
    if let Some(title) = m.title.as_deref().filter(|t| !t.is_empty()) {
        return title.to_string();
    }
    let who = m.who();
    match m.mention_type {
        MentionType::Like => format!("{who} liked this"),
        MentionType::Repost => format!("{who} reposted this"),
        MentionType::Bookmark => format!("{who} bookmarked this"),
        MentionType::Reply => format!("Reply by {who}"),
        MentionType::Mention => format!("Mention by {who}"),
    }
}

/// Mentions as a dense table, like WordPress's comment screen: a checkbox a row for the bulk
/// buttons above it (Approve, Reject, Block their domains), and each row's own buttons — all
/// one form, the row buttons posting to their own address (`formaction`), so none of it needs
/// JavaScript. `posts` names the posts by match key, for their titles.
fn mention_table(
    list: &[Mention],
    csrf: &str,
    back: &str,
    posts: &std::collections::HashMap<String, String>,
) -> Markup {
    html! {
        form.bulk method="post" action="/admin/bulk" {
            (csrf_field(csrf))
            input type="hidden" name="back" value=(back);
            div.bulk-actions {
                span.muted { "Selected:" }
                button.approve type="submit" name="action" value="approve" { "Approve" }
                button.reject type="submit" name="action" value="reject" { "Reject" }
                button.block type="submit" name="action" value="block" { "Block their domains" }
            }
            table.mentions {
                thead { tr {
                    th { span.visually-hidden { "Select" } }
                    th { "Mention" } th { "About" } th { "When" } th { "Status" } th { "Actions" }
                } }
                tbody {
                    @for m in list { (mention_row(m, posts)) }
                }
            }
        }
    }
}

/// One row of [`mention_table`].
fn mention_row(m: &Mention, posts: &std::collections::HashMap<String, String>) -> Markup {
    let source_host = crate::model::host_of(&m.source).unwrap_or_default();
    let action = |verb: &str| format!("/admin/mentions/{}/{verb}", m.id);
    let post_title = crate::model::match_key(&m.target)
        .and_then(|k| posts.get(&k).cloned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            url::Url::parse(&m.target).map_or(m.target.clone(), |u| u.path().to_string())
        });
    html! {
        tr.mention id=(format!("mention-{}", m.id)) {
            td { input type="checkbox" name="id" value=(m.id) aria-label=(format!("Select mention {}", m.id)); }
            td.what {
                span.badge { (m.mention_type.as_str()) } " "
                a.title href=[web_link(&m.source)] rel="nofollow noopener noreferrer" { (mention_label(m)) }
                div.muted.small {
                    @match (&m.author.name, &m.author.url) {
                        (Some(name), Some(url)) => a href=[web_link(url)] rel="nofollow noopener noreferrer" { (name) },
                        (Some(name), None) => (name),
                        (None, _) => "unknown author",
                    }
                    " · " span.host { (source_host) } " · " (m.kind.as_str())
                }
                @if let Some(excerpt) = m.excerpt.as_deref().filter(|e| !e.is_empty()) {
                    div.excerpt { (crate::text::truncate(excerpt, 160)) }
                }
                @if let Some(reason) = &m.reason { div.muted.small.reason { (reason) } }
            }
            td.post { a href=[web_link(&m.target)] title=(m.target) { (post_title) } }
            td.when { (when(m.published.as_deref().unwrap_or(&m.first_seen))) }
            td { span class=(format!("badge {}", m.status.as_str())) { (m.status.as_str()) } }
            td.actions {
                @if matches!(m.status, Status::Held | Status::Rejected) && m.verified_at.is_some() {
                    button.approve type="submit" formaction=(action("approve")) { "Approve" }
                }
                @if m.status != Status::Rejected {
                    button.reject type="submit" formaction=(action("reject")) { "Reject" }
                }
                @if !source_host.is_empty() {
                    button.block type="submit" name="block_domain" value=(source_host) { "Block" }
                }
            }
        }
    }
}

/// The moderation queue: held mentions, oldest first.
pub fn queue(
    frame: &Frame<'_>,
    held: &[Mention],
    moderated: bool,
    posts: &std::collections::HashMap<String, String>,
) -> Markup {
    let body = html! {
        @if held.is_empty() {
            p.empty {
                "Nothing waits for you."
                @if !moderated {
                    " Moderation is off ([moderation] mode = \"auto\"): verified mentions are published at once; reject any under Mentions."
                }
            }
        } @else {
            p.muted { (held.len()) " held, oldest first. Approve publishes; Reject hides and sticks through later pings; Block domain hides every mention from that host and refuses new ones." }
            (mention_table(held, frame.csrf, "/admin/", posts))
        }
    };
    page(frame, Nav::Queue, "Moderation queue", body)
}

/// Values of the mentions page's filters, as given.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct MentionFilters {
    #[serde(default)]
    pub post: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, rename = "type")]
    pub mention_type: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub page: Option<u32>,
}

/// Values of the log's filters, as given.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct LogFilters {
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub page: Option<u32>,
}

fn select(name: &str, label: &str, chosen: &str, words: &[&str]) -> Markup {
    html! {
        label {
            (label)
            select name=(name) {
                option value="" selected[chosen.is_empty()] { "any" }
                @for w in words { option value=(w) selected[*w == chosen] { (w) } }
            }
        }
    }
}

/// Previous and next links that keep the filters.
fn pager(path: &str, query: &[(&str, &str)], page: u32, has_next: bool) -> Markup {
    let link = |p: u32| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(_, v)| !v.is_empty()) {
            q.append_pair(k, v);
        }
        q.append_pair("page", &p.to_string());
        format!("{path}?{}", q.finish())
    };
    html! {
        nav.pager {
            @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Newer" } }
            span.muted { "Page " (page) }
            @if has_next { a rel="next" href=(link(page + 1)) { "Older →" } }
        }
    }
}

/// The site filter, for the host's operator when there are several sites (nothing otherwise).
fn site_select(frame: &Frame<'_>, chosen: &str) -> Markup {
    if frame.sites.is_empty() {
        return html! {};
    }
    select(
        "site",
        "Site",
        chosen,
        &frame.sites.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

/// All mentions, filtered and paged.
pub fn mentions(
    frame: &Frame<'_>,
    f: &MentionFilters,
    list: &[Mention],
    page_no: u32,
    has_next: bool,
    back: &str,
    posts: &std::collections::HashMap<String, String>,
) -> Markup {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let types: Vec<&str> = MentionType::ALL.iter().map(|t| t.as_str()).collect();
    let body = html! {
        form.filters method="get" action="/admin/mentions" {
            label { "Post URL" input type="url" name="post" value=(f.post) placeholder="https://…"; }
            (select("status", "Status", &f.status, &statuses))
            (select("kind", "Kind", &f.kind, &kinds))
            (select("type", "Type", &f.mention_type, &types))
            label { "Text" input type="search" name="q" value=(f.q) placeholder="title, author, source"; }
            (site_select(frame, &f.site))
            button type="submit" { "Filter" }
        }
        @if list.is_empty() { p.empty { "No mentions match." } }
        @if !list.is_empty() { (mention_table(list, frame.csrf, back, posts)) }
        (pager("/admin/mentions", &[("post", &f.post), ("status", &f.status), ("kind", &f.kind), ("type", &f.mention_type), ("q", &f.q), ("site", &f.site)], page_no, has_next))
    };
    page(frame, Nav::Mentions, "Mentions", body)
}

/// The decision log, newest first.
pub fn log(
    frame: &Frame<'_>,
    f: &LogFilters,
    outcomes: &[String],
    lines: &[Decision],
    page_no: u32,
    has_next: bool,
) -> Markup {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let body = html! {
        form.filters method="get" action="/admin/log" {
            (select("outcome", "Outcome", &f.outcome, &outcomes.iter().map(String::as_str).collect::<Vec<_>>()))
            (select("kind", "Kind", &f.kind, &kinds))
            label { "Text" input type="search" name="q" value=(f.q) placeholder="source, target, reason"; }
            (site_select(frame, &f.site))
            button type="submit" { "Filter" }
        }
        @if lines.is_empty() { p.empty { "No decisions match." } }
        ol.log {
            @for d in lines {
                li {
                    div.meta {
                        span class=(format!("badge {}", d.outcome)) { (d.outcome) }
                        span.badge { (d.kind) }
                        span.muted { (when(&d.at)) }
                    }
                    p.urls { span.url { (d.source) } " → " span.url { (d.target) } }
                    p.reason { (d.reason) }
                }
            }
        }
        (pager("/admin/log", &[("outcome", &f.outcome), ("kind", &f.kind), ("q", &f.q), ("site", &f.site)], page_no, has_next))
    };
    page(frame, Nav::Log, "Decision log", body)
}

/// Pings sent for the blogger's own links.
pub fn sent(frame: &Frame<'_>, records: &[SendRecord], page_no: u32, has_next: bool) -> Markup {
    let body = html! {
        @if records.is_empty() {
            p.empty { "Nothing sent yet. " code { "backfeed send --dry-run" } " shows what would be; " code { "[send] enabled = true" } " sends after every crawl." }
        }
        @for r in records {
            article.sent {
                div.meta {
                    span class=(format!("badge {}", r.status)) { (r.status) }
                    @if let Some(p) = &r.protocol { span.badge { (p) } }
                    @if let Some(code) = r.http_status { span.badge { "HTTP " (code) } }
                    span.muted { (r.sent_at.as_deref().map(when).unwrap_or_else(|| "not yet".into())) }
                }
                p.urls { a href=[web_link(&r.source)] { (r.source) } " → " a href=[web_link(&r.target)] rel="nofollow noopener noreferrer" { (r.target) } }
                @if let Some(reason) = &r.reason { p.reason { (reason) } }
                @if r.attempts > 1 { p.muted { (r.attempts) " attempts" } }
            }
        }
        (pager("/admin/sent", &[], page_no, has_next))
    };
    page(frame, Nav::Sent, "Sent pings", body)
}

/// Blocked domains: the store's (with Unblock) and the config's (fixed).
pub fn blocks(frame: &Frame<'_>, blocked: &[String], from_config: &[String]) -> Markup {
    let body = html! {
        form.block method="post" action="/admin/blocks" {
            (csrf_field(frame.csrf))
            input type="hidden" name="back" value="/admin/blocks";
            label for="domain" { "Domain" }
            input #domain type="text" name="domain" required placeholder="spam.example" autocomplete="off";
            button.block type="submit" { "Block" }
        }
        p.muted { "A block hides every mention from the domain and its subdomains (reversibly) and refuses new ones." }
        @if blocked.is_empty() && from_config.is_empty() { p.empty { "No domain is blocked." } }
        ul.blocks {
            @for d in blocked {
                li {
                    span.domain { (d) }
                    (button_form("/admin/blocks/unblock", frame.csrf, "/admin/blocks", &[("domain", d)], "Unblock", "quiet"))
                }
            }
            @for d in from_config {
                li { span.domain { (d) } span.muted { "from the config file ([moderation] blocked_domains)" } }
            }
        }
    };
    page(frame, Nav::Blocks, "Blocked domains", body)
}

/// The live processes, schedules, queue, failing watched URLs, social source errors,
/// notifications.
/// With several sites, each one's posts and mentions by status first.
pub fn status(frame: &Frame<'_>, r: &StatusReport) -> Markup {
    let per_site = &r.sites;
    let body = html! {
        @if per_site.len() > 1 {
            section {
                h2 { "Sites" }
                table {
                    thead { tr { th { "Site" } th { "Posts" } th { "Mentions" } } }
                    tbody {
                        @for counts in per_site {
                            tr {
                                td { a href=(format!("/admin/mentions?site={}", counts.site)) { @if counts.site.is_empty() { "(none)" } @else { (counts.site) } } }
                                td { (counts.posts) }
                                td { (counts.by_status.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Store" }
            dl.grid {
                dt { "Posts" } dd { (r.counts.posts) }
                @for (status, n) in &r.counts.by_status { dt { "Mentions " (status) } dd { (n) } }
                dt { "Queue" } dd { (r.counts.queue_depth) " waiting, " (r.counts.queue_due) " due now" }
                dt { "Decisions logged" } dd { (r.counts.decisions) }
            }
        }
        section {
            h2 { "Processes serving this store" }
            @if r.instances.is_empty() { p.empty { "No live `serve` process." } }
            @for i in &r.instances {
                p { strong { (i.name) } " on " (i.host) " · " (i.roles)
                    " · started " (when(&i.started_at)) " · heartbeat " (when(&i.heartbeat_at))
                    " · " (i.checked) " checked, " (i.requests) " requests" }
            }
        }
        section {
            h2 { "Schedules" }
            @for s in &r.schedules {
                article.schedule {
                    h3 { (s.name) " " code { (s.cron) } }
                    p { "Last run: " (s.last_end.as_deref().map(when).unwrap_or_else(|| "never".into()))
                        " · next: " (s.next.as_deref().map(when).unwrap_or_else(|| "-".into())) }
                    @if let Some(summary) = &s.last_summary { p.muted { (summary) } }
                }
            }
        }
        section {
            h2 { "Social sources" }
            @if r.source_problems.is_empty() { p.empty { "No source reports an error." } }
            @for p in &r.source_problems { p.problem { strong { (p.name) } ": " (p.error) } }
        }
        section {
            h2 { "Failing watched URLs" }
            @if r.failing.is_empty() { p.empty { "Every watched URL answered last time." } }
            @for f in &r.failing {
                article.failing {
                    p.url { (f.url) }
                    p { (f.errors) " errors in a row; last: " (f.last_error.as_deref().unwrap_or("?")) }
                    p.muted { "Last ok: " (f.last_ok.as_deref().map(when).unwrap_or_else(|| "never".into()))
                        " · next try: " (f.next_try.as_deref().map(when).unwrap_or_else(|| "next crawl".into())) }
                }
            }
        }
        @if !r.notifications.is_empty() {
            section {
                h2 { "Notifications waiting" }
                @for d in &r.notifications {
                    p { strong { (d.channel) } ": " (d.pending) " pending"
                        @if let Some(e) = &d.last_error { " · last error: " (e) } }
                }
            }
        }
    };
    page(frame, Nav::Status, "Status", body)
}

/// The pages' stylesheet: readable on a phone, no web fonts, no images.
pub const CSS: &str = r#"
table.mentions { width: 100%; border-collapse: collapse; background: var(--card); font-size: .92rem; }
table.mentions th, table.mentions td { text-align: left; vertical-align: top; padding: .45rem .5rem; border-bottom: 1px solid var(--line); }
table.mentions th { font-size: .8rem; color: var(--muted); font-weight: 600; }
table.mentions td.when { white-space: nowrap; color: var(--muted); }
table.mentions td.actions { white-space: nowrap; min-width: 15rem; }
table.mentions td.actions button { padding: .15rem .45rem; font-size: .85rem; margin: 0 .25rem .25rem 0; display: inline-block; }
table.mentions .excerpt { color: var(--muted); margin-top: .15rem; }
table.mentions .small { font-size: .82rem; }
.bulk-actions { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .5rem 0; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 700px) {
  table.mentions thead { display: none; }
  table.mentions tr { display: grid; grid-template-columns: 2rem 1fr; border-bottom: 1px solid var(--line); padding: .4rem 0; }
  table.mentions td { border: 0; padding: .15rem .3rem; grid-column: 2; }
  table.mentions td:first-child { grid-column: 1; grid-row: 1 / span 5; }
}
:root { color-scheme: light dark; --fg: #1d232b; --muted: #5f6b7a; --bg: #f6f7f9; --card: #fff;
  --line: #dde1e6; --accent: #2f5fd0; --ok: #1f7a3f; --bad: #b42318; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ee; --muted: #9aa5b4; --bg: #14171c;
  --card: #1c2027; --line: #2c323c; --accent: #7aa2ff; --ok: #4cc27a; --bad: #ff7b72; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); overflow-wrap: anywhere; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .6rem 1rem;
  background: var(--card); border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; } .brand .site { font-weight: 400; color: var(--muted); margin-left: .5rem; }
header nav { display: flex; flex-wrap: wrap; gap: .25rem; flex: 1; }
@media (max-width: 640px) { header nav { order: 3; flex-basis: 100%; } .signout { margin-left: auto; } }
header nav a { padding: .3rem .6rem; border-radius: .4rem; text-decoration: none; color: var(--fg); }
header nav a[aria-current=page] { background: var(--bg); font-weight: 600; }
.count { background: var(--bad); color: #fff; border-radius: 1rem; padding: 0 .45rem; font-size: .8rem; }
main { max-width: 56rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; } h2 { font-size: 1.1rem; margin: .25rem 0; } h3 { font-size: 1rem; margin: 0; }
article, ol.log li, ul.blocks li { background: var(--card); border: 1px solid var(--line); border-radius: .6rem;
  padding: .75rem 1rem; margin: 0 0 .75rem; list-style: none; }
ol.log, ul.blocks { padding: 0; }
blockquote { margin: .5rem 0; padding-left: .75rem; border-left: 3px solid var(--line); color: var(--muted); }
.meta { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; font-size: .85rem; }
.badge { border: 1px solid var(--line); border-radius: .3rem; padding: 0 .35rem; }
.badge.verified, .badge.accepted, .badge.approved, .badge.sent { color: var(--ok); border-color: var(--ok); }
.badge.rejected, .badge.refused, .badge.deleted, .badge.failed, .badge.blocked { color: var(--bad); border-color: var(--bad); }
.muted, .reason { color: var(--muted); } .url, .domain { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
p { margin: .3rem 0; } .empty { color: var(--muted); font-style: italic; }
.notice { background: var(--card); border-left: 4px solid var(--ok); padding: .5rem .75rem; }
.problem { border-left: 4px solid var(--bad); padding: .5rem .75rem; background: var(--card); }
.actions:not(td) { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: .5rem; }
form.inline { display: inline; }
button { font: inherit; padding: .45rem .9rem; border-radius: .4rem; border: 1px solid var(--line);
  background: var(--card); color: var(--fg); cursor: pointer; min-height: 2.5rem; }
button.approve, button.primary { background: var(--ok); border-color: var(--ok); color: #fff; }
button.block { border-color: var(--bad); color: var(--bad); }
button.quiet { border-color: transparent; color: var(--muted); }
.filters, form.block { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: 1rem; }
.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
input, select { font: inherit; padding: .4rem .5rem; border: 1px solid var(--line); border-radius: .4rem;
  background: var(--card); color: var(--fg); min-height: 2.5rem; }
ul.blocks li { display: flex; justify-content: space-between; align-items: center; gap: .5rem; flex-wrap: wrap; }
.pager { display: flex; gap: 1rem; justify-content: center; margin: 1rem 0; }
dl.grid { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.grid dt { color: var(--muted); } dl.grid dd { margin: 0; }
main.signin { max-width: 22rem; margin-top: 12vh; }
main.signin form { display: flex; flex-direction: column; gap: .5rem; }
"#;

/// `url` as a link target when it is http(s) ([`crate::model::is_web_url`]); otherwise the link
/// is shown without one, so a `javascript:` URL from an old store is text, never a link.
fn web_link(url: &str) -> Option<&str> {
    crate::model::is_web_url(url).then_some(url)
}
