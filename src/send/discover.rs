//! Where a page we link to takes pings: pure functions over one fetched response, so one GET
//! serves all three discoveries (webmention.rocks serves each test URL once).
//!
//! - **Webmention** (W3C, 3.1.2): the first `Link` header with the exact rel token `webmention`
//!   (header names in any case, several headers, comma-separated values, quoted or bare rel);
//!   else the first `<link>` or `<a>` in document order whose rel holds that token and that has
//!   an `href` (empty means the page itself). Read with the HTML parser, so commented-out and
//!   escaped markup never matches; resolved against the URL after redirects, query kept.
//! - **Pingback** (1.0, 2.3): the `X-Pingback` header, else the spec's exact
//!   `<link rel="pingback" href="…">` form, with its four entities expanded — deliberately no
//!   more lenient than the spec, so that all clients agree.
//! - **Trackback**: the embedded RDF (usually inside a comment) whose `dc:identifier` is the
//!   linked URL names the `trackback:ping` URL.

use crate::model::match_key;
use reqwest::header::HeaderMap;
use url::Url;

/// The endpoints a page advertises; each `None` where it advertises none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endpoints {
    pub webmention: Option<Url>,
    pub pingback: Option<Url>,
    pub trackback: Option<Url>,
}

/// Discovers every endpoint of the page `linked` (the URL as our post links it) answered with
/// `headers` and `html` from `final_url`.
pub fn discover(linked: &str, final_url: &Url, headers: &HeaderMap, html: &str) -> Endpoints {
    Endpoints {
        webmention: webmention_endpoint(final_url, headers, html),
        pingback: pingback_server(headers, html),
        trackback: trackback_ping(linked, final_url, html),
    }
}

fn webmention_endpoint(final_url: &Url, headers: &HeaderMap, html: &str) -> Option<Url> {
    let from_header = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(link_values)
        .find(|(_, rels)| rels.iter().any(|r| r == "webmention"))
        .map(|(uri, _)| uri);
    if let Some(uri) = from_header {
        return final_url.join(uri.trim()).ok();
    }
    let doc = crate::verify::html::parse_document(html).ok()?;
    doc.root_element()
        .descendants()
        .filter_map(scraper::ElementRef::wrap)
        .filter(|el| matches!(el.value().name(), "link" | "a"))
        .filter(|el| {
            el.value().attr("rel").is_some_and(|rel| {
                rel.split_ascii_whitespace()
                    .any(|t| t.eq_ignore_ascii_case("webmention"))
            })
        })
        .find_map(|el| el.value().attr("href"))
        .and_then(|href| final_url.join(href.trim()).ok())
}

/// The values of one `Link` header (RFC 8288): each URI reference with its rel tokens,
/// lower-cased, in order.
pub fn link_values(header: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(after_open) = rest.strip_prefix('<') else {
            return out;
        };
        let Some(close) = after_open.find('>') else {
            return out;
        };
        let uri = after_open[..close].to_string();
        rest = &after_open[close + 1..];
        let mut rels = Vec::new();
        // Parameters: `; name=value` or `; name="value"`, up to the next top-level comma.
        loop {
            rest = rest.trim_start();
            let Some(param) = rest.strip_prefix(';') else {
                break;
            };
            let param = param.trim_start();
            let name_len = param
                .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_whitespace())
                .unwrap_or(param.len());
            let name = param[..name_len].to_ascii_lowercase();
            rest = param[name_len..].trim_start();
            let mut value = String::new();
            if let Some(v) = rest.strip_prefix('=') {
                let v = v.trim_start();
                if let Some(quoted) = v.strip_prefix('"') {
                    let end = quoted.find('"').unwrap_or(quoted.len());
                    value = quoted[..end].to_string();
                    rest = quoted.get(end + 1..).unwrap_or("");
                } else {
                    let end = v.find([';', ',']).unwrap_or(v.len());
                    value = v[..end].trim().to_string();
                    rest = &v[end..];
                }
            }
            if name == "rel" {
                rels.extend(value.split_whitespace().map(str::to_ascii_lowercase));
            }
        }
        out.push((uri, rels));
    }
}

fn pingback_server(headers: &HeaderMap, html: &str) -> Option<Url> {
    if let Some(v) = headers.get("x-pingback").and_then(|v| v.to_str().ok()) {
        return Url::parse(v.trim()).ok();
    }
    const START: &str = "<link rel=\"pingback\" href=\"";
    let mut at = 0;
    while let Some(found) = html[at..].find(START) {
        let value_start = at + found + START.len();
        at = value_start;
        let Some(len) = html[value_start..].find('"') else {
            break;
        };
        let tail = html[value_start + len + 1..].trim_start_matches(' ');
        let tail = tail.strip_prefix('/').unwrap_or(tail);
        if len > 0 && tail.starts_with('>') {
            let uri = html[value_start..value_start + len]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&");
            return Url::parse(&uri).ok();
        }
    }
    None
}

fn trackback_ping(linked: &str, final_url: &Url, html: &str) -> Option<Url> {
    let wanted = [match_key(linked), match_key(final_url.as_str())];
    let mut at = 0;
    while let Some(found) = html[at..].find("<rdf:Description") {
        let start = at + found;
        let end = html[start..].find('>').map_or(html.len(), |e| start + e);
        let tag = &html[start..end];
        at = end;
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            let from = tag.find(&key)? + key.len();
            let len = tag[from..].find('"')?;
            Some(tag[from..from + len].replace("&amp;", "&"))
        };
        let identifier = attr("dc:identifier");
        let is_ours = identifier
            .as_deref()
            .is_some_and(|id| wanted.contains(&match_key(id)) && match_key(id).is_some());
        if is_ours && let Some(ping) = attr("trackback:ping") {
            return final_url.join(&ping).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn link_header_values_split_and_read_rel_tokens() {
        let v = link_values(
            r#"<https://a.example/x>; rel="other", <https://a.example/wm?q=1>; rel="webmention somethingelse""#,
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].0, "https://a.example/wm?q=1");
        assert_eq!(v[1].1, ["webmention", "somethingelse"]);
        assert_eq!(
            link_values("</test/1/webmention>; rel=webmention")[0].1,
            ["webmention"]
        );
    }

    #[test]
    fn pingback_takes_only_the_spec_form() {
        let h = HeaderMap::new();
        assert_eq!(
            pingback_server(
                &h,
                r#"<link rel="pingback" href="https://b.example/xmlrpc.php?a=1&amp;b=2" />"#
            )
            .unwrap()
            .as_str(),
            "https://b.example/xmlrpc.php?a=1&b=2"
        );
        assert_eq!(
            pingback_server(&h, r#"<link href="https://b.example/x" rel="pingback">"#),
            None
        );
        let header = headers(&[("X-Pingback", "https://b.example/rpc")]);
        assert_eq!(
            pingback_server(&header, "").unwrap().as_str(),
            "https://b.example/rpc"
        );
    }

    #[test]
    fn trackback_from_the_rdf_naming_the_linked_page() {
        let page = Url::parse("https://bob.example/2024/hello").unwrap();
        let html = r#"<!-- <rdf:RDF><rdf:Description rdf:about="https://bob.example/other"
            dc:identifier="https://bob.example/other" trackback:ping="https://bob.example/tb/1" />
            <rdf:Description rdf:about="https://bob.example/2024/hello"
            dc:identifier="https://bob.example/2024/hello" dc:title="Hello"
            trackback:ping="https://bob.example/trackback/42" /></rdf:RDF> -->"#;
        assert_eq!(
            trackback_ping("https://bob.example/2024/hello", &page, html)
                .unwrap()
                .as_str(),
            "https://bob.example/trackback/42"
        );
        assert_eq!(
            trackback_ping("https://bob.example/2024/else", &page, "<p>none</p>"),
            None
        );
    }
}
