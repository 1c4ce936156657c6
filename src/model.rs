//! Plain data shared by every layer, with no I/O: the URL matching rules, the words a mention is
//! described with (kind, type, status) and the value a verification produces.
//!
//! Keeping these here lets the verifier and the store agree on meaning without knowing of each
//! other, and lets the matching rules of the contract ("a trailing slash optional, http and https
//! equal, utm_* dropped…") live in exactly one function: [`match_key`].

use serde::Serialize;
use url::Url;

/// The key two URLs share exactly when the contract says they point at the same post:
/// case-insensitive scheme and host, default port dropped, fragment dropped, `utm_*` parameters
/// dropped, http and https equal, a trailing slash optional. `None` for anything that is not an
/// absolute http(s) URL.
pub fn match_key(raw: &str) -> Option<String> {
    let url = Url::parse(raw.trim()).ok()?;
    match_key_of(&url)
}

/// [`match_key`] for an already parsed URL (relative hrefs are resolved by the caller).
pub fn match_key_of(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?;
    let mut key = String::with_capacity(64);
    key.push_str(host);
    if let Some(port) = url.port() {
        // `Url` already drops the scheme's own default port; an https URL on :80 (or the reverse)
        // is the other scheme's default and equal under "http and https equal".
        if port != 80 && port != 443 {
            key.push(':');
            key.push_str(&port.to_string());
        }
    }
    push_normalized_path(&mut key, without_index_file(url.path()));
    if let Some(query) = url.query() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.to_ascii_lowercase().starts_with("utm_"))
            .collect();
        if !kept.is_empty() {
            key.push('?');
            key.push_str(&kept.join("&"));
        }
    }
    Some(key)
}

/// A path without its trailing slash, and without a final directory-index file name
/// (`index.html`, `index.htm`, `index.php`): a static site serves `/post/1/` and
/// `/post/1/index.html` as one page, and they are one post.
fn without_index_file(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    if ["index.html", "index.htm", "index.php"]
        .iter()
        .any(|index| file.eq_ignore_ascii_case(index))
    {
        dir.trim_end_matches('/')
    } else {
        path
    }
}

/// Appends `path` with percent-escapes of unreserved characters decoded and the others'
/// hex digits upper-cased (RFC 3986 §6.2.2): `/%68ello` and `/hello` are one path.
fn push_normalized_path(key: &mut String, path: &str) {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (
                (bytes[i + 1] as char).to_digit(16),
                (bytes[i + 2] as char).to_digit(16),
            )
        {
            let byte = (hi * 16 + lo) as u8;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                key.push(byte as char);
            } else {
                key.push('%');
                key.push(bytes[i + 1].to_ascii_uppercase() as char);
                key.push(bytes[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
        } else {
            let ch = path[i..].chars().next().expect("inside the string");
            key.push(ch);
            i += ch.len_utf8();
        }
    }
}

/// A wait in whole seconds that came from outside (`Retry-After`, a rate-limit reset,
/// `max-age`) or from a backoff: clamped to [`Wait::MAX_SECS`] when made, so that "now plus
/// this" can never overflow a date, whatever a server announced. Every such duration passes
/// through this type before it becomes a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Wait(u32);

impl Wait {
    /// Longest wait honoured: thirty days. A server asking for more gets this.
    pub const MAX_SECS: u64 = 30 * 86_400;

    pub fn secs(secs: u64) -> Wait {
        Wait(secs.min(Self::MAX_SECS) as u32)
    }

    /// From a signed count (negative: no wait).
    pub fn secs_i64(secs: i64) -> Wait {
        Wait::secs(secs.max(0) as u64)
    }

    pub fn as_secs(self) -> u64 {
        u64::from(self.0)
    }

    /// At most `max` seconds.
    pub fn at_most(self, max: u64) -> Wait {
        Wait::secs(self.as_secs().min(max))
    }

    /// Now plus this wait.
    pub fn from_now(self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(i64::from(self.0))
    }

    /// Now plus this wait, as the store writes times (RFC 3339, whole seconds, UTC).
    pub fn from_now_rfc3339(self) -> String {
        self.from_now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether `raw` is an absolute http(s) URL: the one rule for every URL backfeed stores or
/// shows as a link, whatever its source (`javascript:`, `vbscript:` and `data:` never pass).
pub fn is_web_url(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// Whether `url` is one of `profiles` (a person's accounts elsewhere) or a page under one:
/// `https://mastodon.social/@you/123` is under `https://mastodon.social/@you`, and
/// `…/@younger` is not. Compared as match keys (scheme, case and trailing slash aside).
pub fn under_any_profile<'a>(url: &str, profiles: impl IntoIterator<Item = &'a str>) -> bool {
    let Some(key) = match_key(url) else {
        return false;
    };
    profiles.into_iter().any(|profile| {
        match_key(profile).is_some_and(|own| {
            key == own
                || key
                    .strip_prefix(own.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    })
}

/// The host of a URL, lower-cased, or `None`.
pub fn host_of(raw: &str) -> Option<String> {
    Url::parse(raw)
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}

/// Whether `host` is `domain` or one of its subdomains. A fully qualified name's final dot
/// (`spam.example.`, which DNS resolves as `spam.example`) names the same host: a block is not
/// passed by adding one.
pub fn host_in_domain(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_matches('.').to_ascii_lowercase();
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

/// A domain to block, as a person typed it: trimmed, lower-cased, without a scheme, path or
/// leading dot; `None` when it names no host (the operator's page and `backfeed block` share it).
pub fn domain_name(typed: &str) -> Option<String> {
    let text = typed.trim().trim_start_matches('.').to_ascii_lowercase();
    let text = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(&text);
    let host = text.split(['/', '?', '#']).next().unwrap_or("");
    match url::Host::parse(host) {
        Ok(url::Host::Domain(d)) if d.contains('.') || d == "localhost" => Some(d),
        Ok(url::Host::Ipv4(ip)) => Some(ip.to_string()),
        _ => None,
    }
}

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word used in the store, the CLI and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// The value named by `word`, if any.
            pub fn parse(word: &str) -> Option<Self> {
                match word { $($word => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// How a candidate came to us.
    Kind {
        Pingback => "pingback",
        Trackback => "trackback",
        Webmention => "webmention",
        Feed => "feed",
        Page => "page",
        Refback => "refback",
        Hackernews => "hackernews",
        Reddit => "reddit",
        Bluesky => "bluesky",
        Mastodon => "mastodon",
    }
);

word_enum!(
    /// What the source does with the post (post type discovery, response types only).
    MentionType {
        Mention => "mention",
        Reply => "reply",
        Like => "like",
        Repost => "repost",
        Bookmark => "bookmark",
    }
);

impl MentionType {
    /// The property name webmention.io uses for this type in JF2 (`wm-property`).
    pub fn wm_property(self) -> &'static str {
        match self {
            MentionType::Mention => "mention-of",
            MentionType::Reply => "in-reply-to",
            MentionType::Like => "like-of",
            MentionType::Repost => "repost-of",
            MentionType::Bookmark => "bookmark-of",
        }
    }

    /// The type named by a webmention.io `wm-property` value.
    pub fn from_wm_property(property: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.wm_property() == property)
    }
}

word_enum!(
    /// Where a mention stands.
    Status {
        Pending => "pending",
        Verified => "verified",
        Held => "held",
        Rejected => "rejected",
        Deleted => "deleted",
    }
);

word_enum!(
    /// Where a ping for one of the blogger's links stands.
    SendStatus {
        Sent => "sent",
        NoEndpoint => "no_endpoint",
        Retrying => "retrying",
        Failed => "failed",
        Refused => "refused",
        WouldSend => "would_send",
    }
);

/// An author as read from a source; every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Author {
    pub name: Option<String>,
    pub url: Option<String>,
    pub photo: Option<String>,
}

impl Author {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.url.is_none() && self.photo.is_none()
    }
}

/// What a verified source says about its link to the post.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Extracted {
    pub mention_type: Option<MentionType>,
    pub title: Option<String>,
    pub author: Author,
    /// RFC 3339.
    pub published: Option<String>,
    pub excerpt: Option<String>,
    pub content_html: Option<String>,
    /// The author's name from page metadata (or the host), used when neither the entry nor
    /// the author's own page (authorship algorithm) names the author.
    #[serde(skip)]
    pub fallback_author_name: Option<String>,
    /// Where the source redirected to, when it did (kept beside the source for display).
    #[serde(skip)]
    pub final_url: Option<String>,
    /// The original this page says it is a copy of (`u-url` naming another page: Brid.gy's
    /// copies of a toot or a Bluesky post).
    #[serde(skip)]
    pub originals: Vec<String>,
    /// The copies this page says it has (`u-syndication`: a blog reply posted to Mastodon too).
    #[serde(skip)]
    pub copies: Vec<String>,
}

/// The result of checking one candidate. A failure to verify is a value with a reason, not an
/// error: the pipeline decides what each outcome does to the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The source links to the post.
    Verified(Box<Extracted>),
    /// Fetched fine, but no link to the post (deletes a stored mention).
    NoLink(String),
    /// 410 Gone, or a `<meta http-equiv="Status" content="410">` page (deletes a stored mention).
    Gone(String),
    /// 404 and other definite "not there" answers (a repeated one deletes a stored mention).
    NotFound(String),
    /// Refused before or while fetching: SSRF guard, blocked domain, bad target, too large.
    Refused(String),
    /// Timeout, DNS, TLS, 5xx, 429: try again later, never deletes anything.
    Transient(String),
    /// Not tried: our own budget for the source's host is spent. Due again after the seconds
    /// given; not an attempt, and not a decision worth a log line each time.
    Deferred(String, u64),
    /// A conditional re-fetch answered 304: nothing changed.
    Unchanged,
}

impl Outcome {
    /// The short word the decision log and metrics use.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Verified(_) => "verified",
            Outcome::NoLink(_) => "no_link",
            Outcome::Gone(_) => "gone",
            Outcome::NotFound(_) => "not_found",
            Outcome::Refused(_) => "refused",
            Outcome::Transient(_) => "transient",
            Outcome::Deferred(..) => "deferred",
            Outcome::Unchanged => "unchanged",
        }
    }

    /// The human reason.
    pub fn reason(&self) -> String {
        match self {
            Outcome::Verified(_) => "source links to the post".into(),
            Outcome::Unchanged => "not modified since last check".into(),
            Outcome::NoLink(r)
            | Outcome::Gone(r)
            | Outcome::NotFound(r)
            | Outcome::Refused(r)
            | Outcome::Transient(r)
            | Outcome::Deferred(r, _) => r.clone(),
        }
    }
}

/// A stored mention as read back for listing and publishing.
#[derive(Clone, Debug, Serialize)]
pub struct Mention {
    pub id: i64,
    pub source: String,
    pub target: String,
    pub kind: Kind,
    #[serde(rename = "type")]
    pub mention_type: MentionType,
    pub status: Status,
    pub title: Option<String>,
    pub author: Author,
    pub published: Option<String>,
    pub excerpt: Option<String>,
    pub content_html: Option<String>,
    pub first_seen: String,
    pub verified_at: Option<String>,
    #[serde(skip)]
    pub reason: Option<String>,
    #[serde(skip)]
    pub updated_at: String,
    #[serde(skip)]
    pub final_url: Option<String>,
    /// The format an imported mention came from (`wxr`, `webmention.io`, `jsonl`).
    pub imported: Option<String>,
    /// Every other address this reaction was seen at (its original, its copies), when any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub syndication: Vec<String>,
}

impl Mention {
    /// Who made it, for a person to read: the author's name, else the source's host, else
    /// "Someone".
    pub fn who(&self) -> String {
        self.author
            .name
            .clone()
            .or_else(|| host_of(&self.source))
            .unwrap_or_else(|| "Someone".into())
    }
}

/// One of the blogger's own posts.
#[derive(Clone, Debug, Serialize)]
pub struct Post {
    pub url: String,
    pub title: Option<String>,
    pub key: String,
    pub published: Option<String>,
    pub mentions: i64,
}

/// Current UTC time in RFC 3339 with a `Z`, second precision; the one format the store keeps.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `secs` before now, as [`now_rfc3339`] writes times (for "since" and "older than" bounds).
pub fn secs_ago_rfc3339(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// For results whose failure must not stop the caller (bookkeeping writes): the failure is
/// logged, never silently dropped.
pub trait OrLog {
    fn or_log(self, what: &str);
}

impl<T, E: std::fmt::Display> OrLog for Result<T, E> {
    fn or_log(self, what: &str) {
        if let Err(e) = self {
            tracing::warn!(error = %e, "{what}");
        }
    }
}

/// The site's names every feed's metadata is built from.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    pub title: &'a str,
    /// The blog's home page (`[site] base_url`); its host is the `tag:` authority of every id.
    pub home_url: &'a str,
    /// Where backfeed is reached (`[server] public_url`), ending in `/`.
    pub public_url: &'a str,
}

/// [`Site`] owned: the names of one site (or of the server), looked up per request.
#[derive(Clone, Debug)]
pub struct SiteNames {
    pub title: String,
    pub home_url: String,
    pub public_url: String,
}

impl SiteNames {
    pub fn site(&self) -> Site<'_> {
        Site {
            title: &self.title,
            home_url: &self.home_url,
            public_url: &self.public_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_hosts_as_typed_or_refused() {
        assert_eq!(domain_name(" Spam.Example "), Some("spam.example".into()));
        assert_eq!(
            domain_name("https://spam.example/page"),
            Some("spam.example".into())
        );
        assert_eq!(domain_name(".spam.example"), Some("spam.example".into()));
        assert_eq!(domain_name("not a domain"), None);
        assert_eq!(domain_name(""), None);
        assert_eq!(domain_name("example"), None);
    }

    #[test]
    fn match_key_applies_the_contract_rules() {
        let post = match_key("https://Blog.Example/2024/hello/").unwrap();
        for variant in [
            "http://blog.example/2024/hello",
            "https://blog.example:443/2024/hello#comments",
            "https://BLOG.example/2024/hello/?utm_source=x&utm_medium=y",
            "https://blog.example/2024/hello/index.html",
            "https://blog.example/2024/hello/INDEX.HTM#top",
        ] {
            assert_eq!(match_key(variant).unwrap(), post, "{variant}");
        }
        assert_ne!(
            match_key("https://blog.example/2024/hello?p=2").unwrap(),
            post
        );
        assert_ne!(
            match_key("https://blog.example:8080/2024/hello").unwrap(),
            post
        );
        assert_ne!(
            match_key("https://blog.example/2024/hello/index.html.bak").unwrap(),
            post
        );
        assert_eq!(
            match_key("https://blog.example/index.html").unwrap(),
            match_key("https://blog.example/").unwrap()
        );
        assert_eq!(match_key("mailto:a@b.example"), None);
        assert_eq!(match_key("not a url"), None);
    }

    #[test]
    fn domains_match_subdomains_only_on_dot_boundaries() {
        assert!(host_in_domain("spam.example", "spam.example"));
        assert!(host_in_domain("a.b.spam.example", "spam.example"));
        assert!(!host_in_domain("notspam.example", "spam.example"));
        assert!(host_in_domain("www.spam.example.", "spam.example"));
        assert!(host_in_domain("Spam.Example", "spam.example."));
        assert!(!host_in_domain("spam.example", ""));
        assert!(!host_in_domain("spam.example.", "."));
    }
}
