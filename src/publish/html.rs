//! Mentions shown on the site: an HTML fragment for one post — likes and reposts as a row of
//! faces, replies and mentions as a list, WordPress's "Pingback: <title>" lines for pingbacks and
//! trackbacks — with stable `backfeed-…` class names for the site's CSS. Every string from a
//! source is escaped; links are http(s) only and get `rel="nofollow ugc"`. No script.
//! `/embed.js` renders the same markup in the browser from `/api/mentions.jf2`, for sites that
//! cannot include HTML at build time.
//!
//! Defence in depth: the store holds only cleaned content, whatever way it came in, and this
//! edge does not rely on it. The fragment passes stored content through the allow-list again
//! (one bounded parse of at most 8 KiB per entry), and `embed.js` never hands server text to
//! `innerHTML`: it parses content into an inert document and copies allow-listed elements and
//! attributes into new nodes. A store filled some other way (an old backup, a hand-edited
//! database) still shows no script on a blogger's page.

use crate::model::{Kind, Mention, MentionType, is_web_url};
use crate::text::html_escape;

/// The fragment for one post's published mentions.
pub fn fragment(mentions: &[Mention]) -> String {
    let mut out = Vec::new();
    write_fragment(&mut out, mentions.len(), &mut super::in_memory(mentions))
        .expect("writing to memory cannot fail");
    String::from_utf8(out).expect("the fragment is UTF-8")
}

/// The fragment of `count` mentions handed over by `each`, to `out`: three passes (faces,
/// entries, pings), so no list of them is held.
pub fn write_fragment(
    out: &mut dyn std::io::Write,
    count: usize,
    each: &mut super::Each<'_>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "<section class=\"backfeed-mentions\" data-count=\"{count}\">"
    )?;
    let is_face = |m: &Mention| matches!(m.mention_type, MentionType::Like | MentionType::Repost);
    let is_ping = |m: &Mention| !is_face(m) && matches!(m.kind, Kind::Pingback | Kind::Trackback);
    let mut section = |wanted: &dyn Fn(&Mention) -> bool,
                       (open, close): (&str, &str),
                       item: fn(&Mention) -> String|
     -> std::io::Result<()> {
        let mut opened = false;
        each(&mut |m| {
            if wanted(m) {
                if !opened {
                    out.write_all(open.as_bytes())?;
                    opened = true;
                }
                out.write_all(item(m).as_bytes())?;
            }
            Ok(())
        })?;
        if opened {
            out.write_all(close.as_bytes())?;
        }
        Ok(())
    };
    section(
        &is_face,
        ("<ul class=\"backfeed-facepile\">\n", "</ul>\n"),
        face_item,
    )?;
    section(
        &|m| !is_face(m) && !is_ping(m),
        ("<ol class=\"backfeed-list\">\n", "</ol>\n"),
        entry_item,
    )?;
    section(
        &is_ping,
        ("<ul class=\"backfeed-pings\">\n", "</ul>\n"),
        ping_item,
    )?;
    out.write_all(b"</section>\n")
}

/// A like or repost: a face in the pile.
fn face_item(m: &Mention) -> String {
    let who = m.who();
    let verb = if m.mention_type == MentionType::Like {
        "liked"
    } else {
        "reposted"
    };
    let face = match m.author.photo.as_deref().filter(|p| is_web_url(p)) {
        Some(photo) => format!(
            "<img class=\"backfeed-avatar\" src=\"{}\" alt=\"{}\" loading=\"lazy\" width=\"32\" height=\"32\">",
            html_escape(photo),
            html_escape(&who)
        ),
        None => format!(
            "<span class=\"backfeed-initial\">{}</span>",
            html_escape(&initials(&who))
        ),
    };
    format!(
        "<li class=\"backfeed-{}\"><a{} rel=\"nofollow ugc\" title=\"{} {verb} this\">{face}</a></li>\n",
        m.mention_type.as_str(),
        href(&m.source),
        html_escape(&who)
    )
}

/// A reply or mention: an entry with its (cleaned again) content.
fn entry_item(m: &Mention) -> String {
    let clean_content = m
        .content_html
        .as_deref()
        .zip(url::Url::parse(&m.source).ok());
    let body = match (clean_content, &m.title, &m.excerpt) {
        (Some((html, base)), _, _) => crate::verify::sanitize(html, &base),
        (None, Some(title), _) => html_escape(title),
        (None, None, Some(excerpt)) => html_escape(excerpt),
        (None, None, None) => html_escape(&m.source),
    };
    format!(
        "<li class=\"backfeed-entry backfeed-{}\"><span class=\"backfeed-author\">{}</span> \
         <a class=\"backfeed-source\"{} rel=\"nofollow ugc\"><time datetime=\"{}\">{}</time></a>\
         <div class=\"backfeed-content\">{body}</div></li>\n",
        m.mention_type.as_str(),
        html_escape(&m.who()),
        href(&m.source),
        html_escape(date(m)),
        html_escape(date(m).get(..10).unwrap_or(date(m)))
    )
}

/// A pingback or trackback: WordPress's "Pingback: <title>" line.
fn ping_item(m: &Mention) -> String {
    let word = if m.kind == Kind::Pingback {
        "Pingback"
    } else {
        "Trackback"
    };
    let title = m.title.clone().unwrap_or_else(|| m.who());
    format!(
        "<li class=\"backfeed-ping\">{word}: <a{} rel=\"nofollow ugc\">{}</a></li>\n",
        href(&m.source),
        html_escape(&title)
    )
}

/// Up to two initials of a name, as the web component shows them ("Grace Hopper" → "GH").
fn initials(name: &str) -> String {
    let letters: String = name
        .split_whitespace()
        .take(2)
        .filter_map(|word| word.chars().next())
        .collect();
    if letters.is_empty() {
        "?".into()
    } else {
        letters
    }
}

/// ` href="…"` for an http(s) URL; nothing for any other (the link stays, inert).
fn href(url: &str) -> String {
    if is_web_url(url) {
        format!(" href=\"{}\"", html_escape(url))
    } else {
        String::new()
    }
}

fn date(m: &Mention) -> &str {
    m.published.as_deref().unwrap_or(&m.first_seen)
}

/// The look of the mentions, for the fragment (`/mentions.css`) and inside `<backfeed-mentions>`
/// (its shadow root): light and dark (the reader's `prefers-color-scheme`, or `theme="light"`
/// / `theme="dark"` on the element), a row of round faces, a list with rules between entries.
/// A site adjusts it with custom properties — `--backfeed-text`, `--backfeed-muted`,
/// `--backfeed-link`, `--backfeed-border`, `--backfeed-face-bg`, `--backfeed-avatar-size`,
/// `--backfeed-radius`, `--backfeed-font` — set on the element or any ancestor, and styles the
/// web component's parts with `::part(entry)`, `::part(avatar)` and the others (each part is
/// the class name without `backfeed-`).
pub const MENTIONS_CSS: &str = r#":host { display: block; }
.backfeed-mentions {
  --_text: var(--backfeed-text, #1f2328); --_muted: var(--backfeed-muted, #59636e);
  --_link: var(--backfeed-link, #0969da); --_border: var(--backfeed-border, #d1d9e0);
  --_face: var(--backfeed-face-bg, #dde4ee); --_size: var(--backfeed-avatar-size, 2.25rem);
  font: var(--backfeed-font, inherit); color: var(--_text); line-height: 1.5;
}
@media (prefers-color-scheme: dark) {
  .backfeed-mentions:not([data-theme="light"]) {
    --_text: var(--backfeed-text, #e6edf3); --_muted: var(--backfeed-muted, #9198a1);
    --_link: var(--backfeed-link, #4493f8); --_border: var(--backfeed-border, #3d444d);
    --_face: var(--backfeed-face-bg, #2a313c);
  }
}
.backfeed-mentions[data-theme="dark"] {
  --_text: var(--backfeed-text, #e6edf3); --_muted: var(--backfeed-muted, #9198a1);
  --_link: var(--backfeed-link, #4493f8); --_border: var(--backfeed-border, #3d444d);
  --_face: var(--backfeed-face-bg, #2a313c); background: var(--backfeed-bg, #0d1117);
}
.backfeed-mentions a { color: var(--_link); }
.backfeed-facepile { display: flex; flex-wrap: wrap; gap: .35rem; list-style: none; margin: 0 0 1rem; padding: 0; }
.backfeed-facepile a { display: block; text-decoration: none; }
.backfeed-avatar, .backfeed-initial {
  width: var(--_size); height: var(--_size); border-radius: var(--backfeed-radius, 50%);
  object-fit: cover; display: inline-grid; place-items: center; box-sizing: border-box;
  background: var(--_face); color: var(--_text); font-weight: 600; font-size: calc(var(--_size) * .4);
  text-transform: uppercase; overflow: hidden;
}
.backfeed-list { list-style: none; margin: 0; padding: 0; }
.backfeed-entry { border-top: 1px solid var(--_border); padding: .75rem 0; overflow-wrap: anywhere; }
.backfeed-entry:first-child { border-top: 0; }
.backfeed-author { font-weight: 600; }
.backfeed-source { color: var(--_muted); font-size: .85em; margin-left: .4em; text-decoration: none; }
.backfeed-content { margin-top: .3rem; }
.backfeed-content > :first-child { margin-top: 0; }
.backfeed-content > :last-child { margin-bottom: 0; }
.backfeed-content img { max-width: 100%; height: auto; }
.backfeed-content blockquote { margin: .5rem 0; padding-left: .75rem; border-left: 3px solid var(--_border); color: var(--_muted); }
.backfeed-pings { list-style: none; margin: 1rem 0 0; padding: 0; color: var(--_muted); font-size: .9em; }
.backfeed-ping { padding: .15rem 0; }
"#;

/// `/embed.js`: defines `<backfeed-mentions target="…">`, which fetches this server's
/// `/api/mentions.jf2` for the target and renders the fragment's markup: text set with
/// `textContent`; content parsed into an inert document (`DOMParser`: no script runs, no image
/// loads there) and rebuilt element by element from the server's allow-list, attributes and
/// http(s)/mailto links only. No server string reaches `innerHTML`.
pub static EMBED_JS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| EMBED_JS_TEMPLATE.replace("/*THEME*/", MENTIONS_CSS));

/// `/embed.js` before [`MENTIONS_CSS`] is put in (at `/*THEME*/`, inside a template literal:
/// the CSS holds no backtick and no `${`).
const EMBED_JS_TEMPLATE: &str = r#"// backfeed: <backfeed-mentions target="https://blog.example/post/"></backfeed-mentions>
(() => {
  const base = new URL(".", document.currentScript ? document.currentScript.src : location.href);
  const THEME = `/*THEME*/`;
  // Each element is also a part named like its class without "backfeed-", for ::part().
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) {
      e.className = cls;
      e.setAttribute("part", cls.split(" ").map((c) => c.replace(/^backfeed-/, "")).join(" "));
    }
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const initials = (who) =>
    who.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => Array.from(w)[0]).join("") || "?";
  const web = (url) => /^https?:\/\//i.test(url || "") ? url : null;
  // The server's allow-list (src/verify/html.rs): kept elements, and dropped ones with all they
  // hold; any other element gives up its tags and keeps its text.
  const KEEP = new Set(("a abbr acronym b bdi blockquote br caption cite code col colgroup dd del details dfn div " +
    "dl dt em figcaption figure h1 h2 h3 h4 h5 h6 hgroup hr i img ins kbd li mark ol p pre q rp rt rtc ruby s " +
    "samp small span strike strong sub summary sup table tbody td tfoot th thead time tr tt u ul var wbr").split(" "));
  const DROP = new Set(("script style template noscript iframe object embed applet frame frameset noframes noembed " +
    "svg math form input button select textarea option optgroup datalist head title meta link base param source " +
    "track audio video canvas map area xmp plaintext dialog portal").split(" "));
  const ATTRS = new Set(["title", "lang", "alt", "width", "height", "colspan", "rowspan", "scope", "span", "start", "datetime"]);
  const URL_ATTRS = { a: "href", img: "src", blockquote: "cite", q: "cite", del: "cite", ins: "cite" };
  const copyClean = (from, into) => {
    for (const n of from.childNodes) {
      if (n.nodeType === Node.TEXT_NODE) { into.append(n.data); continue; }
      if (n.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = n.localName.toLowerCase();
      if (DROP.has(tag)) continue;
      if (!KEEP.has(tag)) { copyClean(n, into); continue; }
      const e = document.createElement(tag);
      for (const a of n.attributes) {
        const name = a.name.toLowerCase();
        if (ATTRS.has(name)) e.setAttribute(name, a.value);
        else if (URL_ATTRS[tag] === name && (web(a.value) || (tag === "a" && /^mailto:/i.test(a.value)))) e.setAttribute(name, a.value);
      }
      if (tag === "a") e.rel = "nofollow ugc";
      copyClean(n, e);
      into.append(e);
    }
  };
  const hostOf = (url) => { try { return new URL(url).host || "Someone"; } catch { return "Someone"; } };
  const cleanContent = (html, into) =>
    copyClean(new DOMParser().parseFromString(html, "text/html").body, into);
  const link = (href, child) => {
    const a = el("a");
    if (web(href)) a.href = href;
    a.rel = "nofollow ugc";
    a.append(child);
    return a;
  };
  class BackfeedMentions extends HTMLElement {
    async connectedCallback() {
      const target = this.getAttribute("target");
      if (!target) return;
      const url = new URL("api/mentions.jf2", base);
      url.searchParams.set("target", target);
      url.searchParams.set("per-page", this.getAttribute("per-page") || "100");
      const response = await fetch(url);
      if (!response.ok) return;
      const feed = await response.json();
      const kids = feed.children || [];
      const section = el("section", "backfeed-mentions");
      section.dataset.count = String(kids.length);
      const theme = this.getAttribute("theme");
      if (theme === "light" || theme === "dark") section.dataset.theme = theme;
      const faces = kids.filter((m) => ["like-of", "repost-of"].includes(m["wm-property"]));
      const pings = kids.filter((m) => !faces.includes(m) && ["pingback", "trackback"].includes(m["wm-protocol"]));
      const rest = kids.filter((m) => !faces.includes(m) && !pings.includes(m));
      const types = { "in-reply-to": "reply", "like-of": "like", "repost-of": "repost", "bookmark-of": "bookmark" };
      if (faces.length) {
        const ul = el("ul", "backfeed-facepile");
        for (const m of faces) {
          const who = (m.author && m.author.name) || hostOf(m["wm-source"]);
          const li = el("li", m["wm-property"] === "like-of" ? "backfeed-like" : "backfeed-repost");
          let face;
          if (m.author && web(m.author.photo)) {
            face = el("img", "backfeed-avatar");
            face.alt = who; face.width = 36; face.height = 36; face.loading = "lazy";
            // A photo that fails to load gives way to the person's initials.
            face.addEventListener("error", () => face.replaceWith(el("span", "backfeed-initial", initials(who))), { once: true });
            face.src = m.author.photo;
          } else {
            face = el("span", "backfeed-initial", initials(who));
          }
          face.title = who;
          li.append(link(m["wm-source"], face));
          ul.append(li);
        }
        section.append(ul);
      }
      if (rest.length) {
        const ol = el("ol", "backfeed-list");
        for (const m of rest) {
          const who = (m.author && m.author.name) || hostOf(m["wm-source"]);
          const li = el("li", "backfeed-entry backfeed-" + (types[m["wm-property"]] || "mention"));
          li.append(el("span", "backfeed-author", who), " ");
          const when = el("time", null, (m.published || m["wm-received"] || "").slice(0, 10));
          when.dateTime = m.published || m["wm-received"] || "";
          const src = link(m["wm-source"], when);
          src.className = "backfeed-source";
          li.append(src);
          const body = el("div", "backfeed-content");
          if (m.content && m.content.html) cleanContent(m.content.html, body);
          else body.textContent = m.name || (m.content && m.content.text) || m["wm-source"];
          li.append(body);
          ol.append(li);
        }
        section.append(ol);
      }
      if (pings.length) {
        const ul = el("ul", "backfeed-pings");
        for (const m of pings) {
          const who = (m.author && m.author.name) || hostOf(m["wm-source"]);
          const li = el("li", "backfeed-ping");
          li.append(m["wm-protocol"] === "pingback" ? "Pingback: " : "Trackback: ");
          li.append(link(m["wm-source"], document.createTextNode(m.name || who)));
          ul.append(li);
        }
        section.append(ul);
      }
      // In a shadow root of its own: the site's CSS cannot break it, and it cannot leak out;
      // the site adjusts it through the custom properties and parts of MENTIONS_CSS.
      const root = this.shadowRoot || this.attachShadow({ mode: "open" });
      const style = document.createElement("style");
      style.textContent = THEME;
      root.replaceChildren(style, section);
    }
  }
  if (!customElements.get("backfeed-mentions")) customElements.define("backfeed-mentions", BackfeedMentions);
})();
"#;
