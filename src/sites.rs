//! The sites one backfeed serves, and which of them a URL belongs to.
//!
//! A site is a name and a `base_url` (plus what the configuration says about it, in
//! [`crate::config::SiteConfig`]). Every post, mention and decision is filed under one site when
//! it is written: the site whose `base_url` is the longest prefix of its target (http and https
//! equal, the host in any case). Filing at write time, as data, rather than matching URLs when
//! reading, means a site removed from the configuration keeps its rows until
//! `backfeed forget-site`, and a listing by site is an index seek.
//!
//! This module needs nothing but URLs, so the store can route what it writes by it.

use url::Url;

/// One site as routing sees it: its name and the prefix its posts live under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteRoute {
    pub name: String,
    pub base_url: Url,
}

/// Every configured site's route, longest `base_url` first, so the first match is the longest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    routes: Vec<SiteRoute>,
}

impl Routes {
    pub fn new(mut routes: Vec<SiteRoute>) -> Routes {
        routes.sort_by(|a, b| {
            b.base_url
                .as_str()
                .len()
                .cmp(&a.base_url.as_str().len())
                .then_with(|| a.name.cmp(&b.name))
        });
        Routes { routes }
    }

    /// The site `url` lives under: the longest `base_url` that is a prefix of it.
    pub fn route(&self, url: &Url) -> Option<&SiteRoute> {
        self.routes.iter().find(|r| is_under(url, &r.base_url))
    }

    /// [`Routes::route`] of a URL as text; `None` for what is not an http(s) URL.
    pub fn route_text(&self, url: &str) -> Option<&SiteRoute> {
        self.route(&Url::parse(url.trim()).ok()?)
    }

    /// The name of the site `url` is filed under; `""` when it is under none.
    pub fn site_of(&self, url: &str) -> &str {
        self.route_text(url).map_or("", |r| r.name.as_str())
    }

    pub fn named(&self, name: &str) -> Option<&SiteRoute> {
        self.routes.iter().find(|r| r.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &SiteRoute> {
        self.routes.iter()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Whether `url` names something under `base` (http and https equal, the host in any case,
/// the port as written or the scheme's default).
pub fn is_under(url: &Url, base: &Url) -> bool {
    let port = |u: &Url| u.port_or_known_default().filter(|p| *p != 80 && *p != 443);
    matches!(url.scheme(), "http" | "https")
        && url.host_str().map(str::to_ascii_lowercase)
            == base.host_str().map(str::to_ascii_lowercase)
        && port(url) == port(base)
        && url.path().starts_with(base.path())
}

/// Whether `name` may name a site: lower-case letters, digits, `-` and `.` (a host name is the
/// default), at most 100 characters, not empty.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, base: &str) -> SiteRoute {
        SiteRoute {
            name: name.into(),
            base_url: Url::parse(base).unwrap(),
        }
    }

    #[test]
    fn the_longest_base_url_that_is_a_prefix_wins() {
        let routes = Routes::new(vec![
            route("host", "https://host.example/"),
            route("anna", "https://host.example/anna/"),
            route("bob", "https://bob.example/"),
        ]);
        assert_eq!(routes.site_of("https://host.example/anna/post/1"), "anna");
        assert_eq!(routes.site_of("http://HOST.example/anna/"), "anna");
        assert_eq!(routes.site_of("https://host.example/annabel/"), "host");
        assert_eq!(routes.site_of("https://bob.example/p"), "bob");
        assert_eq!(routes.site_of("https://bob.example:8443/p"), "");
        assert_eq!(routes.site_of("https://carol.example/p"), "");
        assert_eq!(routes.site_of("not a url"), "");
    }

    #[test]
    fn names_are_lower_case_words_or_hosts() {
        assert!(valid_name("anna"));
        assert!(valid_name("anna.example"));
        assert!(!valid_name("Anna"));
        assert!(!valid_name("an na"));
        assert!(!valid_name(""));
    }
}
