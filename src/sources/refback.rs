//! Referrer logs (`[refback] access_logs`): new lines of combined-format access logs, followed
//! across rotation; a Referer on another site that reached a post is a candidate.

use crate::model::{Kind, OrLog, match_key};
use crate::pipeline::Context;
use std::io::{Read, Seek, SeekFrom};
use url::Url;

use super::{Summary, post_index, submit_candidate};

/// Search engines, whose referrers are never mentions.
pub(crate) const SEARCH_ENGINES: &[&str] = &[
    "google.",
    "bing.com",
    "duckduckgo.com",
    "search.yahoo.",
    "yandex.",
    "baidu.com",
    "ecosia.org",
    "startpage.com",
    "qwant.com",
    "search.brave.com",
    "kagi.com",
];

/// One parsed line of a combined-format access log.
#[derive(Debug, PartialEq)]
pub struct LogLine {
    pub path: String,
    pub status: u16,
    pub referer: String,
}

/// Parses `host ident user [date] "METHOD path PROTO" status size "referer" "agent"`.
pub fn parse_combined(line: &str) -> Option<LogLine> {
    let after_date = &line[line.find("] \"")? + 3..];
    let (request, rest) = after_date.split_once('"')?;
    let mut parts = request.split_whitespace();
    let _method = parts.next()?;
    let path = parts.next()?.to_string();
    let mut rest = rest.trim_start().splitn(3, ' ');
    let status = rest.next()?.parse().ok()?;
    let _size = rest.next()?;
    let quoted = rest.next()?.trim_start().strip_prefix('"')?;
    let referer = quoted.split_once('"')?.0.to_string();
    Some(LogLine {
        path,
        status,
        referer,
    })
}

/// Reads new lines of every `[refback] access_logs` file; Referers pointing at posts from
/// outside become candidates. Returns (lines read, unparseable lines).
pub async fn poll_refback(ctx: &Context, summary: &mut Summary) -> (usize, usize) {
    if ctx.cfg.refback.access_logs.is_empty() {
        return (0, 0);
    }
    let posts = post_index(ctx);
    // A combined log names the path, not the virtual host: a path is looked up under each
    // site, and a referrer from any site served here is internal.
    let sites = ctx.sites();
    let site_hosts: Vec<String> = sites
        .list
        .iter()
        .filter_map(|s| s.base_url.host_str().map(str::to_ascii_lowercase))
        .collect();
    let (mut read, mut bad) = (0, 0);
    for path in &ctx.cfg.refback.access_logs {
        let lines = match read_new_lines(ctx, path) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(log = %path.display(), error = %e, "cannot read access log");
                summary.errors += 1;
                continue;
            }
        };
        let mut candidates: Vec<(String, String)> = Vec::new();
        for line in lines.lines().filter(|l| !l.trim().is_empty()) {
            read += 1;
            let Some(entry) = parse_combined(line) else {
                bad += 1;
                continue;
            };
            if !(200..400).contains(&entry.status)
                || entry.referer == "-"
                || entry.referer.is_empty()
            {
                continue;
            }
            let Ok(referer) = Url::parse(&entry.referer) else {
                continue;
            };
            let Some(host) = referer.host_str().map(str::to_ascii_lowercase) else {
                continue;
            };
            if site_hosts.contains(&host) || SEARCH_ENGINES.iter().any(|s| host.contains(s)) {
                continue;
            }
            let Some(post) = sites.list.iter().find_map(|site| {
                let requested = site.base_url.join(&entry.path).ok()?;
                match_key(requested.as_str()).and_then(|k| posts.get(&k))
            }) else {
                continue;
            };
            let pair = (referer.to_string(), post.clone());
            if !candidates.contains(&pair) {
                candidates.push(pair);
            }
        }
        for (source, post) in candidates {
            submit_candidate(ctx, &source, &post, Kind::Refback, None, summary).await;
        }
    }
    if bad > 0 {
        tracing::info!(lines = read, unparseable = bad, "access log lines skipped");
    }
    (read, bad)
}

/// The complete lines appended since the last read, following rotation (a new inode or a
/// shorter file starts from the top).
pub(crate) fn read_new_lines(ctx: &Context, path: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let key = path.display().to_string();
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let (inode, size) = (meta.ino(), meta.len());
    let offset = ctx
        .store
        .log_offset(&key)
        .ok()
        .flatten()
        .filter(|(i, o)| *i == inode && *o <= size)
        .map_or(0, |(_, o)| o);
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(64 * 1024 * 1024).read_to_end(&mut buf)?;
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(complete);
    ctx.store
        .set_log_offset(&key, inode, offset + complete as u64)
        .or_log("crawl state not kept");
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_log_lines_parse() {
        let line = r#"203.0.113.9 - - [27/Nov/2026:10:00:00 +0000] "GET /2024/hello/ HTTP/1.1" 200 5120 "https://friend.example/links" "Mozilla/5.0 (X11)""#;
        assert_eq!(
            parse_combined(line),
            Some(LogLine {
                path: "/2024/hello/".into(),
                status: 200,
                referer: "https://friend.example/links".into()
            })
        );
        assert_eq!(parse_combined("garbage"), None);
        assert_eq!(
            parse_combined(r#"1.2.3.4 - - [x] "GET" 200 1 "-" "-""#),
            None
        );
    }
}
