//! TOML → a validated [`Config`], in one place.
//!
//! Every later layer trusts what it gets from here: URLs are parsed, cron expressions compile,
//! the listen address is an address. A problem becomes a [`ConfigError`] that names the key, so
//! `main` can print one line and exit 2. Secrets are never in the file: only the names of the
//! environment variables that hold them.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use url::Url;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("config {path}: {key}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: Option<RawSite>,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    schedule: ScheduleConfig,
    #[serde(default)]
    fetch: FetchConfig,
    #[serde(default)]
    watch: Vec<WatchConfig>,
    #[serde(default)]
    sources: SourcesConfig,
    #[serde(default)]
    refback: RefbackConfig,
    #[serde(default)]
    moderation: ModerationConfig,
    #[serde(default)]
    send: SendConfig,
    #[serde(default)]
    notify: NotifyConfig,
    #[serde(default)]
    admin: AdminConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    base_url: Option<String>,
    #[serde(default)]
    feeds: Vec<String>,
    #[serde(default)]
    sitemaps: Vec<String>,
    title: Option<String>,
    #[serde(default)]
    own_profiles: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    public_url: Option<String>,
    rate_limit_per_client: Option<u32>,
    rate_limit_per_source_host: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    metrics_listen: Option<String>,
    instance_name: Option<String>,
}

/// `[site]`: whose posts we collect mentions for.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub base_url: Url,
    pub feeds: Vec<Url>,
    pub sitemaps: Vec<Url>,
    pub title: String,
    /// The blogger's own accounts elsewhere (POSSE): their copies of a post are not mentions.
    pub own_profiles: Vec<Url>,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The SQLite file (empty on PostgreSQL).
    pub path: PathBuf,
    /// Where the store lives: the SQLite file, or the PostgreSQL database `url_env` names.
    pub location: crate::store::Location,
    /// The environment variable holding PostgreSQL's URL (named in messages; the URL never is).
    pub url_env: Option<String>,
    /// How long a lease on a job lasts without renewal: the holder renews it every third of
    /// this while it works, and a job whose holder stopped renewing is taken over after it.
    pub lease_secs: i64,
}

/// `[store]` as written: `path` (SQLite) or `url_env` (PostgreSQL), not both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStore {
    path: Option<PathBuf>,
    url_env: Option<String>,
    pool_size: usize,
    lease_secs: i64,
}

impl StoreConfig {
    /// The store as messages name it: its file, or the variable naming PostgreSQL's URL.
    pub fn describe(&self) -> String {
        match &self.location {
            crate::store::Location::Sqlite(path) => path.display().to_string(),
            crate::store::Location::Postgres { .. } => {
                format!("PostgreSQL (${})", self.url_env.as_deref().unwrap_or("?"))
            }
        }
    }
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: None,
            url_env: None,
            pool_size: 16,
            lease_secs: 60,
        }
    }
}

/// Where `/metrics` is served when `[server] metrics_listen` is not set.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Url,
    /// Receiver requests per minute from one client address (0: no limit).
    pub rate_limit_per_client: u32,
    /// Pings per minute naming sources on one host (0: no limit).
    pub rate_limit_per_source_host: u32,
    /// Open connections at most; more are closed as they arrive.
    pub max_connections: usize,
    /// Open connections from one client address at most (0: no limit besides the total).
    pub max_connections_per_client: usize,
    /// A request's headers must arrive within this; an idle keep-alive connection is closed
    /// after it too.
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this.
    pub body_timeout_secs: u64,
    /// Where `/metrics` is served instead of on `listen` (for a scraper on a private address).
    pub metrics_listen: Option<SocketAddr>,
    /// This process's name in logs, `status` and `/metrics` (default `hostname:pid`).
    pub instance_name: String,
}

/// `[schedule]`: cron expressions with seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub crawl: String,
    pub reverify: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            crawl: "0 */30 * * * *".into(),
            reverify: "0 0 4 * * *".into(),
        }
    }
}

/// `[fetch]`: limits on every outbound request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    pub user_agent: String,
    pub timeout_secs: u64,
    pub max_bytes: usize,
    pub max_redirects: usize,
    pub concurrency: usize,
    pub per_host: usize,
    /// Fetches of URLs from outside per minute to one host (0: no budget), counted on the host
    /// actually fetched after every redirect, so no one can aim backfeed at a third party.
    pub per_host_per_minute: u32,
    pub allow_private_addresses: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: "backfeed/VERSION (+public_url)".into(),
            timeout_secs: 10,
            max_bytes: 2 * 1024 * 1024,
            max_redirects: 5,
            concurrency: 32,
            per_host: 2,
            per_host_per_minute: 60,
            allow_private_addresses: false,
        }
    }
}

/// One `[[watch]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    pub url: String,
    pub kind: Option<String>,
}

/// `[sources.*]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub hackernews: SocialSource,
    pub reddit: SocialSource,
    pub bluesky: SocialSource,
    pub mastodon: SocialSource,
}

/// One social source; the union of the keys each source takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocialSource {
    pub enabled: bool,
    pub api_base: Option<String>,
    pub identifier: Option<String>,
    pub password_env: Option<String>,
    pub account: Option<String>,
    pub search: bool,
    pub token_env: Option<String>,
    /// Reddit app-only OAuth (backfeed extension): names of the variables holding the client
    /// id and secret, and the OAuth API host.
    pub client_id_env: Option<String>,
    pub client_secret_env: Option<String>,
    pub oauth_api_base: Option<String>,
}

/// `[refback]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefbackConfig {
    pub access_logs: Vec<PathBuf>,
}

/// `[notify]`: who hears of a mention published or deleted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `[[notify.webhook]]`, each POSTed on every published or deleted mention.
    pub webhook: Vec<WebhookConfig>,
    /// `[notify.email]`: mail like WordPress sent.
    pub email: Option<EmailConfig>,
}

/// The channel name of mail deliveries.
pub const MAIL: &str = "mail";

impl NotifyConfig {
    /// Whether anyone is to be told: only then are notifications queued.
    pub fn any(&self) -> bool {
        !self.webhook.is_empty() || self.email.is_some()
    }

    /// The channels this configuration names: every webhook's URL, and `mail`.
    pub fn channels(&self) -> Vec<String> {
        self.webhook
            .iter()
            .map(|w| w.url.to_string())
            .chain(self.email.as_ref().map(|_| MAIL.to_string()))
            .collect()
    }

    /// How a channel is shown wherever a person or a program reads it (logs, the decision log,
    /// `status`, the operator's page, `/metrics`): `mail`, or a webhook's `name`, by default its
    /// host. A build hook's URL is its secret (Netlify's and others' carry the token in the
    /// path), so its path and query are shown nowhere.
    pub fn channel_label(&self, channel: &str) -> String {
        if channel == MAIL {
            return MAIL.into();
        }
        let hook = self.webhook.iter().find(|w| w.url.as_str() == channel);
        hook.and_then(|w| w.name.clone())
            .or_else(|| crate::model::host_of(channel))
            .map_or_else(|| "webhook".into(), |host| format!("webhook {host}"))
    }
}

/// One `[[notify.webhook]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: Url,
    /// How the hook is shown in logs, `status` and `/metrics` (default: its host). Its URL is
    /// often its secret (a build hook's token is in the path), so it is never shown.
    pub name: Option<String>,
    /// `webmention.io` (its webhook body) or `jf2` (the entry alone).
    #[serde(default = "default_webhook_format")]
    pub format: String,
    /// The variable holding the shared secret (sent in the body, and signing it).
    pub secret_env: Option<String>,
}

fn default_webhook_format() -> String {
    "webmention.io".into()
}

/// `[notify.email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The variable holding lettre's SMTP URL (credentials included).
    #[serde(default = "default_smtp_url_env")]
    pub smtp_url_env: String,
    pub from: String,
    pub to: Vec<String>,
    /// Empty: one mail per published mention; else a cron expression for one digest a run.
    #[serde(default)]
    pub digest: String,
}

fn default_smtp_url_env() -> String {
    "BACKFEED_SMTP_URL".into()
}

/// `[send]`: pings for the links in the blogger's own posts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendConfig {
    /// Every crawl (and the schedule in `serve`) ends with a send for the posts that changed.
    pub enabled: bool,
    /// Also ping the site's own posts (WordPress does; most people turn it off).
    pub self_pings: bool,
    /// Never ping these domains (and their subdomains).
    pub exclude_domains: Vec<String>,
}

/// `[admin]`: the operator's page at `/admin/`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The environment variable holding the sign-in password; the page is on when it is set
    /// (and not empty).
    pub password_env: Option<String>,
}

impl AdminConfig {
    /// The password, when the page is on.
    pub fn password(&self) -> Option<String> {
        let name = self.password_env.as_deref()?;
        std::env::var(name).ok().filter(|p| !p.is_empty())
    }
}

/// `[moderation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModerationConfig {
    pub mode: String,
    pub blocked_domains: Vec<String>,
    /// The types of mention kept (`reply`, `mention`, `repost`, `like`, `bookmark`, `rsvp`);
    /// others are refused once verified, with the reason "type not collected".
    pub collect: Vec<String>,
}

/// Every type `[moderation] collect` may name.
pub const COLLECTABLE: [&str; 6] = ["reply", "mention", "repost", "like", "bookmark", "rsvp"];

impl Default for ModerationConfig {
    fn default() -> Self {
        ModerationConfig {
            mode: "auto".into(),
            blocked_domains: Vec::new(),
            collect: COLLECTABLE.iter().map(|t| t.to_string()).collect(),
        }
    }
}

impl ModerationConfig {
    /// Whether verified mentions wait for approval.
    pub fn holds(&self) -> bool {
        self.mode == "queue"
    }

    /// Whether mentions of this type are kept.
    pub fn collects(&self, mention_type: crate::model::MentionType) -> bool {
        self.collect.iter().any(|t| t == mention_type.as_str())
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub site: SiteConfig,
    pub store: StoreConfig,
    pub server: ServerConfig,
    pub schedule: ScheduleConfig,
    pub fetch: FetchConfig,
    pub watch: Vec<WatchConfig>,
    pub sources: SourcesConfig,
    pub refback: RefbackConfig,
    pub moderation: ModerationConfig,
    pub send: SendConfig,
    pub notify: NotifyConfig,
    pub admin: AdminConfig,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            path: path.display().to_string(),
            key: key.to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                "(file)",
                format!("cannot read: {e}; pass --config PATH or set BACKFEED_CONFIG"),
            )
        })?;
        Self::parse(&text, path)
    }

    /// Validates TOML text; `path` only names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            path: path.display().to_string(),
            key: key.to_string(),
            message,
        };
        let line_of = |e: &toml::de::Error| {
            e.span()
                .map(|sp| text[..sp.start.min(text.len())].lines().count().max(1))
                .map(|n| format!(" (line {n})"))
                .unwrap_or_default()
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            err(
                "(syntax)",
                format!("{}{}", e.message().replace('\n', " "), line_of(&e)),
            )
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            err(
                &key,
                format!("{}{}", inner.message().replace('\n', " "), line_of(&inner)),
            )
        })?;

        let raw_site = raw
            .site
            .ok_or_else(|| err("site.base_url", "is required".into()))?;
        let base = raw_site
            .base_url
            .ok_or_else(|| err("site.base_url", "is required (your blog's URL)".into()))?;
        let base_url = parse_http_url(&base).map_err(|m| err("site.base_url", m))?;
        let parse_list = |key: &str, list: &[String]| -> Result<Vec<Url>, ConfigError> {
            list.iter()
                .map(|u| parse_http_url(u).map_err(|m| err(key, format!("{u:?}: {m}"))))
                .collect()
        };
        let site = SiteConfig {
            feeds: parse_list("site.feeds", &raw_site.feeds)?,
            sitemaps: parse_list("site.sitemaps", &raw_site.sitemaps)?,
            own_profiles: parse_list("site.own_profiles", &raw_site.own_profiles)?,
            title: raw_site
                .title
                .unwrap_or_else(|| base_url.host_str().unwrap_or("").to_string()),
            base_url,
        };

        let listen_text = raw.server.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = SocketAddr::from_str(&listen_text).map_err(|e| {
            err(
                "server.listen",
                format!("{listen_text:?} is not HOST:PORT ({e})"),
            )
        })?;
        let public_url = match raw.server.public_url {
            Some(u) => parse_http_url(&u).map_err(|m| err("server.public_url", m))?,
            None => Url::parse(&format!("http://{listen}/")).expect("socket address forms a URL"),
        };

        let digest = raw
            .notify
            .email
            .as_ref()
            .map(|e| e.digest.clone())
            .filter(|d| !d.trim().is_empty());
        for (key, expr) in [
            ("schedule.crawl", &raw.schedule.crawl),
            ("schedule.reverify", &raw.schedule.reverify),
        ]
        .into_iter()
        .chain(digest.as_ref().map(|d| ("notify.email.digest", d)))
        {
            cron::Schedule::from_str(expr).map_err(|e| {
                err(
                    key,
                    format!("{expr:?} is not a cron expression with seconds ({e})"),
                )
            })?;
        }

        if raw.store.url_env.is_some() && raw.store.path.is_some() {
            return Err(err(
                "store.path",
                "and store.url_env are both set: keep one (path for SQLite, url_env for PostgreSQL)"
                    .into(),
            ));
        }
        let postgres_url = match &raw.store.url_env {
            None => None,
            Some(variable) => match std::env::var(variable) {
                Ok(url)
                    if url.trim().starts_with("postgres://")
                        || url.trim().starts_with("postgresql://") =>
                {
                    Some(url.trim().to_string())
                }
                Ok(url) if !url.trim().is_empty() => {
                    return Err(err(
                        "store.url_env",
                        format!(
                            "names ${variable}, which does not hold a postgres:// URL: set it to postgres://user:pass@host:5432/db"
                        ),
                    ));
                }
                _ => {
                    return Err(err(
                        "store.url_env",
                        format!(
                            "names ${variable}, which is unset or empty: set it to postgres://user:pass@host:5432/db"
                        ),
                    ));
                }
            },
        };
        if raw.store.pool_size == 0 {
            return Err(err("store.pool_size", "must be at least 1".into()));
        }
        if !(3..=86_400).contains(&raw.store.lease_secs) {
            return Err(err(
                "store.lease_secs",
                "must be between 3 and 86400 seconds".into(),
            ));
        }
        let mut fetch = raw.fetch;
        if fetch.timeout_secs == 0 {
            return Err(err("fetch.timeout_secs", "must be at least 1".into()));
        }
        if fetch.max_bytes < 1024 {
            return Err(err("fetch.max_bytes", "must be at least 1024".into()));
        }
        if fetch.concurrency == 0 {
            return Err(err("fetch.concurrency", "must be at least 1".into()));
        }
        if fetch.per_host == 0 {
            return Err(err("fetch.per_host", "must be at least 1".into()));
        }
        fetch.user_agent = fetch
            .user_agent
            .replace("VERSION", env!("CARGO_PKG_VERSION"))
            .replace("public_url", public_url.as_str());

        for (i, hook) in raw.notify.webhook.iter().enumerate() {
            if hook.format != "webmention.io" && hook.format != "jf2" {
                return Err(err(
                    &format!("notify.webhook[{i}].format"),
                    format!("{:?} is not \"webmention.io\" or \"jf2\"", hook.format),
                ));
            }
        }
        if let Some(email) = &raw.notify.email {
            for (key, addr) in std::iter::once(("notify.email.from", &email.from))
                .chain(email.to.iter().map(|t| ("notify.email.to", t)))
            {
                if addr.parse::<lettre::Address>().is_err() {
                    return Err(err(key, format!("{addr:?} is not a mail address")));
                }
            }
        }

        for (i, w) in raw.watch.iter().enumerate() {
            parse_http_url(&w.url).map_err(|m| err(&format!("watch[{i}].url"), m))?;
            if let Some(kind) = &w.kind
                && kind != "feed"
                && kind != "page"
            {
                return Err(err(
                    &format!("watch[{i}].kind"),
                    format!("{kind:?} is not \"feed\" or \"page\""),
                ));
            }
        }
        for (name, s) in [
            ("hackernews", &raw.sources.hackernews),
            ("reddit", &raw.sources.reddit),
            ("bluesky", &raw.sources.bluesky),
            ("mastodon", &raw.sources.mastodon),
        ] {
            for (key, value) in [
                ("api_base", &s.api_base),
                ("oauth_api_base", &s.oauth_api_base),
            ] {
                if let Some(api) = value {
                    parse_http_url(api).map_err(|m| err(&format!("sources.{name}.{key}"), m))?;
                }
            }
        }
        if let Some(unknown) = raw
            .moderation
            .collect
            .iter()
            .find(|t| !COLLECTABLE.contains(&t.as_str()))
        {
            return Err(err(
                "moderation.collect",
                format!("{unknown:?} is not a type: use {}", COLLECTABLE.join(", ")),
            ));
        }
        if raw.moderation.mode != "auto" && raw.moderation.mode != "queue" {
            return Err(err(
                "moderation.mode",
                format!("{:?} is not \"auto\" or \"queue\"", raw.moderation.mode),
            ));
        }

        // A relative store path is relative to the config file, wherever backfeed is started
        // from: `--config ../cfg/backfeed.toml` keeps the store beside it.
        let store_path = match (&raw.store.path, &raw.store.url_env) {
            (None, Some(_)) => PathBuf::new(),
            (store, _) => {
                let store = store
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("data/backfeed.db"));
                if store.is_relative() {
                    path.parent().unwrap_or(Path::new("")).join(store)
                } else {
                    store
                }
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            site,
            store: StoreConfig {
                location: match postgres_url {
                    Some(url) => crate::store::Location::Postgres {
                        url,
                        pool_size: raw.store.pool_size,
                    },
                    None => crate::store::Location::Sqlite(store_path.clone()),
                },
                path: store_path,
                url_env: raw.store.url_env.clone(),
                lease_secs: raw.store.lease_secs,
            },
            server: ServerConfig {
                listen,
                public_url,
                rate_limit_per_client: raw.server.rate_limit_per_client.unwrap_or(120),
                rate_limit_per_source_host: raw.server.rate_limit_per_source_host.unwrap_or(60),
                max_connections: raw.server.max_connections.unwrap_or(1_000).max(1),
                max_connections_per_client: raw.server.max_connections_per_client.unwrap_or(100),
                header_timeout_secs: raw.server.header_timeout_secs.unwrap_or(10).max(1),
                body_timeout_secs: raw.server.body_timeout_secs.unwrap_or(10).max(1),
                instance_name: match raw.server.instance_name.as_deref().map(str::trim) {
                    None | Some("") => format!("{}:{}", crate::store::hostname(), std::process::id()),
                    Some(name) if name.len() <= 100 && !name.chars().any(char::is_control) => name.to_string(),
                    Some(_) => {
                        return Err(err(
                            "server.instance_name",
                            "must be at most 100 characters, without control characters".into(),
                        ));
                    }
                },
                // `/metrics` has a loopback listener of its own unless told otherwise: the
                // main listener is the one put behind a public proxy. `""` serves it there.
                metrics_listen: match raw
                    .server
                    .metrics_listen
                    .as_deref()
                    .unwrap_or(DEFAULT_METRICS_LISTEN)
                    .trim()
                {
                    "" => None,
                    a => Some(a.parse().map_err(|e| {
                        err(
                            "server.metrics_listen",
                            format!(
                                "{a:?} is not an address:port ({e}); \"\" serves /metrics on the main listener"
                            ),
                        )
                    })?),
                },
            },
            schedule: raw.schedule,
            fetch,
            watch: raw.watch,
            sources: raw.sources,
            refback: raw.refback,
            moderation: raw.moderation,
            send: raw.send,
            notify: raw.notify,
            admin: raw.admin,
        })
    }

    /// Whether `url` names something under `[site] base_url` (http and https equal).
    pub fn is_under_site(&self, url: &Url) -> bool {
        let base = &self.site.base_url;
        url.host_str().map(str::to_ascii_lowercase) == base.host_str().map(str::to_ascii_lowercase)
            && url
                .port_or_known_default()
                .filter(|p| *p != 80 && *p != 443)
                == base
                    .port_or_known_default()
                    .filter(|p| *p != 80 && *p != 443)
            && url.path().starts_with(base.path())
    }
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[site]\nbase_url = \"https://blog.example/\"\n").unwrap();
        assert_eq!(c.fetch.max_bytes, 2_097_152);
        assert_eq!(c.server.listen.port(), 8080);
        assert!(c.fetch.user_agent.starts_with("backfeed/"));
        assert!(c.fetch.user_agent.contains("http://127.0.0.1:8080/"));
        assert_eq!(
            c.server.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap()),
            "/metrics on a loopback listener of its own"
        );
        assert_eq!(c.store.lease_secs, 60);
        let on_main = parse(
            "[site]\nbase_url = \"https://blog.example/\"\n[server]\nmetrics_listen = \"\"\n",
        )
        .unwrap();
        assert_eq!(on_main.server.metrics_listen, None);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(parse("").unwrap_err().key, "site.base_url");
        assert_eq!(
            parse("[site]\nbase_url = \"ftp://x\"").unwrap_err().key,
            "site.base_url"
        );
        let e =
            parse("[site]\nbase_url = \"https://b.example/\"\n[schedule]\ncrawl = \"every day\"")
                .unwrap_err();
        assert_eq!(e.key, "schedule.crawl");
        let e =
            parse("[site]\nbase_url = \"https://b.example/\"\n[fetch]\ntimeout = 3").unwrap_err();
        assert_eq!(e.key, "fetch.timeout", "{e}");
        let e = parse("[site]\nbase_url = \"https://b.example/\"\n[fetch]\nmax_bytes = \"x\"")
            .unwrap_err();
        assert_eq!(e.key, "fetch.max_bytes", "{e}");
        assert_eq!(parse("[site\n").unwrap_err().key, "(syntax)");
        let e = parse("[site]\nbase_url = \"https://b.example/\"\n[moderation]\nmode = \"x\"")
            .unwrap_err();
        assert_eq!(e.key, "moderation.mode");
    }
}
