//! The operator's page and the mentions on a site, in a real browser: Debian's headless
//! Chromium driven through chromedriver (WebDriver) with `fantoccini`.
//!
//! - With JavaScript off: sign in (a wrong password first), approve, reject, block and unblock
//!   by clicking, and the feed follows each click.
//! - With JavaScript on: a page on another origin with `<backfeed-mentions>` and `/embed.js`
//!   shows the mentions, and so does `/mentions.html`, with no error in the console.
//!
//! `.ci/run` installs `chromium` and `chromium-driver` and sets `BACKFEED_REQUIRE_BROWSER=1`,
//! so there a missing browser fails; elsewhere these tests say they were skipped and pass.

mod support;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

const PASSWORD: (&str, &str) = ("TEST_ADMIN_PASSWORD", "open sesame, slowly");

/// A chromedriver of our own on a free port, and a tokio runtime to drive it from plain tests.
struct Browser {
    driver: Child,
    port: u16,
    rt: tokio::runtime::Runtime,
}

impl Drop for Browser {
    /// Ends chromedriver and the browsers it started (its process group), even when a test
    /// failed before closing its session.
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> Option<&'static str> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

impl Browser {
    /// `None` (and a note) when there is no browser here and none is required.
    fn start() -> Option<Browser> {
        let Some(driver) = chromedriver() else {
            assert!(
                std::env::var_os("BACKFEED_REQUIRE_BROWSER").is_none(),
                "chromedriver not found: apt-get install chromium chromium-driver"
            );
            eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
            return None;
        };
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        assert!(
            eventually(20, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "chromedriver listens"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Some(Browser { driver, port, rt })
    }

    /// A new headless session; JavaScript on or off.
    fn session(&self, javascript: bool) -> Client {
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,1000"],
        });
        if let Some(binary) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        {
            options["binary"] = json!(binary);
        }
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        self.rt
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{}", self.port)),
            )
            .expect("a browser session")
    }

    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        self.rt.block_on(f).expect("browser command")
    }

    /// Whether going to `url` lands on the sign-in page.
    fn on_sign_in_page(&self, c: &Client, url: &str) -> bool {
        self.run(c.goto(url));
        self.run(c.current_url()).path().ends_with("/admin/login")
    }

    /// The browser's console messages of level SEVERE since the last call.
    fn console_errors(&self, client: &Client) -> Vec<String> {
        let session = self.run(client.session_id()).expect("a session id");
        let url = format!("http://127.0.0.1:{}/session/{session}/se/log", self.port);
        let log: serde_json::Value = support::client()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        log["value"]
            .as_array()
            .expect("chromedriver's log endpoint answers with a list")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            // The browser asks every origin for a favicon by itself; that is not the page's.
            .filter(|e| !e["message"].as_str().unwrap_or("").contains("/favicon.ico"))
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

fn held_home() -> Home {
    let home = Home::new("");
    home.write_config(
        "[moderation]\nmode = \"queue\"\n\n[admin]\npassword_env = \"TEST_ADMIN_PASSWORD\"\n",
    );
    home.without_rate_limits();
    home.ok(&["crawl"]);
    for (path, title) in [("/a", "Approve this one"), ("/r", "Reject this one")] {
        let source = home.linking_page(path, title);
        home.run(&["submit", &source, &home.post_url()]);
    }
    home
}

/// Clicks the button labelled `label` in the row of the mention whose title is `title`.
async fn click_in_card(
    c: &Client,
    title: &str,
    label: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let xpath = format!(
        "//tr[contains(@class,'mention')][.//a[contains(@class,'title')][contains(.,'{title}')]]//button[normalize-space()='{label}']"
    );
    c.find(Locator::XPath(&xpath)).await?.press(c).await?;
    Ok(())
}

/// Pressing a button that posts a form: clicking, then waiting until the page it was on is
/// gone, so what is read next is the answer's page.
trait Press {
    async fn press(self, c: &Client) -> Result<(), fantoccini::error::CmdError>;
}

impl Press for fantoccini::elements::Element {
    async fn press(self, c: &Client) -> Result<(), fantoccini::error::CmdError> {
        let old_page = c.find(Locator::Css("html")).await?;
        self.click().await?;
        for _ in 0..200 {
            if old_page.tag_name().await.is_err() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pressing the button led nowhere in 10 s");
    }
}

async fn body_text(c: &Client) -> Result<String, fantoccini::error::CmdError> {
    c.find(Locator::Css("body")).await?.text().await
}

#[test]
fn an_operator_moderates_with_javascript_off_and_the_feed_follows() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = held_home();
    let daemon = home.serve_env(&[PASSWORD]);
    let feed = || daemon.text("/mentions.atom");
    let c = browser.session(false);
    let admin = daemon.url("/admin/");

    // Script really is off in this session: a page's script would have changed the title.
    home.web.set(
        "/js-probe",
        Fixture::html("<title>before</title><script>document.title = 'after'</script>"),
    );
    browser.run(c.goto(&home.web.url("/js-probe")));
    assert_eq!(browser.run(c.title()), "before");

    // Signed out, the page sends us to sign in; a wrong password is told so.
    assert!(browser.on_sign_in_page(&c, &admin));
    let sign_in = |password: &str| {
        browser.run(async {
            c.find(Locator::Css("input[type=password][name=password]"))
                .await?
                .send_keys(password)
                .await?;
            c.find(Locator::Css("form button[type=submit]"))
                .await?
                .press(&c)
                .await
        })
    };
    sign_in("not it");
    assert!(browser.run(body_text(&c)).contains("Wrong password."));
    sign_in(PASSWORD.1);
    assert_eq!(browser.run(c.current_url()).path(), "/admin/");
    let queue = browser.run(body_text(&c));
    assert!(
        queue.contains("Approve this one") && queue.contains("Reject this one"),
        "{queue}"
    );
    assert!(!feed().contains("Approve this one"));

    browser.run(click_in_card(&c, "Approve this one", "Approve"));
    assert!(
        browser
            .run(body_text(&c))
            .contains("Approved: the mention is published.")
    );
    assert!(feed().contains("Approve this one"), "approved: in the feed");

    browser.run(click_in_card(&c, "Reject this one", "Reject"));
    let after = browser.run(body_text(&c));
    assert!(after.contains("Rejected"), "{after}");
    assert!(!after.contains("Reject this one"), "no longer in the queue");
    assert!(!feed().contains("Reject this one"));

    // Block the sources' host from the blocked-domains page, then lift the block.
    browser.run(async {
        c.goto(&daemon.url("/admin/blocks")).await?;
        c.find(Locator::Css("input[name=domain]"))
            .await?
            .send_keys("127.0.0.1")
            .await?;
        c.find(Locator::XPath("//button[normalize-space()='Block']"))
            .await?
            .press(&c)
            .await
    });
    assert!(browser.run(body_text(&c)).contains("Domain blocked"));
    assert!(
        !feed().contains("Approve this one"),
        "blocked: out of the feed"
    );
    browser.run(async {
        c.find(Locator::XPath(
            "//li[.//span[@class='domain' and .='127.0.0.1']]//button[normalize-space()='Unblock']",
        ))
        .await?
        .press(&c)
        .await
    });
    assert!(browser.run(body_text(&c)).contains("Domain unblocked"));
    assert!(
        feed().contains("Approve this one"),
        "unblocked: back in the feed"
    );
    assert!(!feed().contains("Reject this one"), "the rejection stands");

    // The status page answers too, and signing out ends it.
    browser.run(c.goto(&daemon.url("/admin/status")));
    assert!(browser.run(body_text(&c)).contains("Schedules"));
    browser.run(async {
        c.find(Locator::XPath("//button[normalize-space()='Sign out']"))
            .await?
            .press(&c)
            .await
    });
    assert!(browser.on_sign_in_page(&c, &admin));
    browser.run(c.close());
}

#[test]
fn a_page_on_another_origin_shows_the_mentions_with_embed_js_and_the_fragment_renders() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = Home::new("");
    home.without_rate_limits();
    home.ok(&["crawl"]);
    let reply = home.source(
        "/friend/reply",
        &format!(
            r#"<article class="h-entry"><a class="p-author h-card" href="https://friend.example/">Ada Friend</a>
            <p class="e-content">A thoughtful reply to <a class="u-in-reply-to" href="{}">the post</a>.</p></article>"#,
            home.post_url()
        ),
    );
    home.ok(&["submit", &reply, &home.post_url()]);
    let daemon = home.serve();
    // The blog's page is served by the fixture web: another port, so another origin.
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Hello, world</title></head><body>
        <article><h1>Hello, world</h1><p>The post.</p></article>
        <backfeed-mentions target="{post}"></backfeed-mentions>
        <script src="{embed}"></script></body></html>"#,
        post = home.post_url(),
        embed = daemon.url("/embed.js"),
    );
    home.web
        .set("/blog/with-mentions.html", Fixture::html(&page));
    let c = browser.session(true);
    browser.run(c.goto(&home.web.url("/blog/with-mentions.html")));
    let text = browser.mentions_text(&c, "section.backfeed-mentions li.backfeed-entry");
    assert!(text.contains("Ada Friend"), "{text}");
    assert!(text.contains("A thoughtful reply"), "{text}");
    let class = browser.mentions_text(&c, "li.backfeed-entry.backfeed-reply");
    assert!(!class.is_empty());
    let errors = browser.console_errors(&c);
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The server-rendered fragment, loaded the same way: the same entry, no errors.
    browser.run(c.goto(&daemon.url(&format!(
        "/mentions.html?target={}",
        percent(&home.post_url())
    ))));
    let entry = browser.run(c.find(Locator::Css("section.backfeed-mentions li.backfeed-entry")));
    let text = browser.run(entry.text());
    assert!(
        text.contains("Ada Friend") && text.contains("A thoughtful reply"),
        "{text}"
    );
    let errors = browser.console_errors(&c);
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.run(c.close());
}

#[test]
fn a_hostile_backup_runs_no_script_on_a_page_with_the_fragment_or_embed_js() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = Home::new("");
    home.without_rate_limits();
    let backup = home.hostile_backup();
    // Restored into a store of its own (its mentions are of the first home's post).
    let fresh = Home::new("");
    fresh.ok(&["import", backup.to_str().unwrap()]);
    // And rows the import would not have let in, as an old store might hold them.
    fresh.poison_store();
    let daemon = fresh.serve();
    let fragment = daemon.text(&format!(
        "/mentions.html?target={}",
        percent(&home.post_url())
    ));
    let pages = [
        ("/blog/fragment.html", fragment),
        (
            "/blog/embed.html",
            format!(
                r#"<backfeed-mentions target="{}"></backfeed-mentions><script src="{}"></script>"#,
                home.post_url(),
                daemon.url("/embed.js")
            ),
        ),
    ];
    let c = browser.session(true);
    for (path, body) in pages {
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Post</title></head><body>{body}</body></html>"
        );
        fresh.web.set(path, Fixture::html(&page));
        browser.run(c.goto(&fresh.web.url(path)));
        let entry = browser.mentions_text(&c, "section.backfeed-mentions li.backfeed-entry");
        assert!(entry.contains("bold words"), "{path}");
        // Hover over and click everything in it (a link that leaves for a web page stays put;
        // the event's path finds the link inside a shadow root too).
        browser.run(c.execute(
            &format!(
                "document.addEventListener('click', (e) => {{
                   const a = e.composedPath().find((n) => n.tagName === 'A');
                   if (a && /^https?:/i.test(a.getAttribute('href') || '')) e.preventDefault();
                 }}, true);
                 for (const el of {MENTIONS_ROOT}.querySelectorAll('section.backfeed-mentions *')) {{
                   el.dispatchEvent(new MouseEvent('mouseover', {{ bubbles: true, composed: true }}));
                   if (typeof el.click === 'function') el.click();
                 }}"
            ),
            vec![],
        ));
        let pwned = browser.run(c.execute("return window.__pwned || null;", vec![]));
        assert!(pwned.is_null(), "{path}: script ran: {pwned}");
        let html = browser.run(c.execute(
            &format!(
                "return {MENTIONS_ROOT}.querySelector('section.backfeed-mentions').outerHTML;"
            ),
            vec![],
        ));
        let html = html.as_str().unwrap_or_default().to_string();
        assert!(!carries_script(&html), "{path}: {html}");
        browser.run(c.goto("about:blank"));
    }
    browser.run(c.close());
}

/// In scripts: where the mentions are — the web component's shadow root when the page has
/// one, else the document (a page with the fragment).
const MENTIONS_ROOT: &str =
    "((document.querySelector('backfeed-mentions') || {}).shadowRoot || document)";

impl Browser {
    /// The text of the first element `selector` finds among the mentions (see
    /// [`MENTIONS_ROOT`]), waiting up to ten seconds for it to appear.
    fn mentions_text(&self, c: &Client, selector: &str) -> String {
        let script = format!(
            "const e = {MENTIONS_ROOT}.querySelector({selector:?}); return e ? e.textContent : null;"
        );
        for _ in 0..200 {
            let found = self.run(c.execute(&script, vec![]));
            if let Some(text) = found.as_str() {
                return text.to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{selector} did not appear among the mentions in 10 s");
    }
}

#[test]
fn the_web_component_has_a_look_of_its_own_that_a_site_can_adjust() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = Home::new("");
    home.without_rate_limits();
    home.ok(&["crawl"]);
    let post = home.post_url();
    let like = |path: &str, name: &str, photo: &str| {
        home.source(
            path,
            &format!(
                r#"<div class="h-entry"><a class="p-author h-card" href="https://people.example{path}">
                <img class="u-photo" src="{photo}" alt="">{name}</a><a class="u-like-of" href="{post}">like</a></div>"#
            ),
        )
    };
    // One face whose photo is missing (404), one without a photo.
    let broken = like(
        "/likes/1",
        "Grace Hopper",
        &home.web.url("/no-such-photo.jpg"),
    );
    let plain = like("/likes/2", "Linus Torvalds", "");
    let reply = home.source(
        "/replies/1",
        &format!(
            r#"<div class="h-entry"><a class="p-author h-card" href="https://people.example/ada">Ada</a>
            <p class="e-content">A reply to <a class="u-in-reply-to" href="{post}">the post</a>.</p></div>"#
        ),
    );
    for source in [&broken, &plain, &reply] {
        home.ok(&["submit", source, &post]);
    }
    let daemon = home.serve();
    let css = client().get(daemon.url("/mentions.css")).send().unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().unwrap().contains("--backfeed-link"));
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
        <style>backfeed-mentions {{ --backfeed-link: rgb(255, 0, 0); }}
        backfeed-mentions::part(entry) {{ background-color: rgb(0, 128, 0); }}</style></head><body>
        <backfeed-mentions target="{post}"></backfeed-mentions>
        <backfeed-mentions id="dark" theme="dark" target="{post}"></backfeed-mentions>
        <script src="{embed}"></script></body></html>"#,
        embed = daemon.url("/embed.js"),
    );
    home.web.set("/blog/look.html", Fixture::html(&page));
    let c = browser.session(true);
    for (width, height) in [(390, 800), (1100, 900)] {
        browser.run(c.set_window_size(width, height));
        browser.run(c.goto(&home.web.url("/blog/look.html")));
        browser.mentions_text(&c, "li.backfeed-entry");
        let look = |script: &str| {
            browser.run(c.execute(&format!("const root = {MENTIONS_ROOT}; {script}"), vec![]))
        };
        // The missing photo gave way to initials (once the browser gave up on it).
        let mut initials = serde_json::Value::Null;
        for _ in 0..100 {
            initials = look(
                "return Array.from(root.querySelectorAll('.backfeed-initial')).map((e) => e.textContent).sort();",
            );
            if initials.as_array().is_some_and(|a| a.len() == 2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(initials, serde_json::json!(["GH", "LT"]), "{width}px");
        // Faces sit in a row; the site's custom property and ::part reach inside.
        let row = look(
            "const f = root.querySelectorAll('.backfeed-facepile li'); return f[0].offsetTop === f[1].offsetTop;",
        );
        assert_eq!(row, true, "{width}px");
        let link = look("return getComputedStyle(root.querySelector('a.backfeed-source')).color;");
        assert_eq!(link, "rgb(255, 0, 0)", "{width}px");
        let part = look(
            "return getComputedStyle(root.querySelector('li.backfeed-entry')).backgroundColor;",
        );
        assert_eq!(part, "rgb(0, 128, 0)", "{width}px");
        let dark = browser.run(c.execute(
            "return getComputedStyle(document.getElementById('dark').shadowRoot.querySelector('.backfeed-author')).color;",
            vec![],
        ));
        assert_eq!(dark, "rgb(230, 237, 243)", "{width}px: the dark theme");
        let errors = browser.console_errors(&c);
        assert!(
            errors.iter().all(|e| e.contains("no-such-photo")),
            "console errors: {errors:?}"
        );
    }
    browser.run(c.close());
}

fn percent(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_string()
}

/// README's pictures: `cargo test --test browser -- --ignored screenshots` writes
/// `docs/admin-queue.png`, `docs/admin-phone.png`, `docs/fragment.png` and
/// `docs/post-with-mentions{,-dark,-phone}.png`.
#[test]
#[ignore = "writes README's screenshots; run by hand"]
fn screenshots() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = held_home();
    let entries = [
        (
            "/friends/ada",
            "Ada Lovelace",
            "in-reply-to",
            "Loved this — the part about feeds made me rebuild my own blog's sidebar.",
        ),
        ("/friends/grace", "Grace Hopper", "like-of", ""),
        ("/friends/linus", "Linus T.", "repost-of", ""),
        (
            "/friends/tim",
            "Tim B-L",
            "mention-of",
            "A good round-up of how blogs used to talk to each other, and can again.",
        ),
    ];
    for (path, name, property, words) in entries {
        let html = format!(
            r#"<article class="h-entry"><h1 class="p-name">{name} on the post</h1>
            <a class="p-author h-card" href="https://people.example{path}">{name}</a>
            <div class="e-content"><p>{words} <a class="u-{property}" href="{}">Hello, world</a></p></div></article>"#,
            home.post_url()
        );
        let source = home.source(path, &html);
        home.run(&["submit", &source, &home.post_url()]);
    }
    let daemon = home.serve_env(&[PASSWORD]);
    // Publish the four friendly ones; the two WordPress-style ones stay in the queue.
    for m in home.mentions() {
        if m["source"].as_str().unwrap_or("").contains("/friends/") {
            home.ok(&["approve", &m["id"].to_string()]);
        }
    }
    std::fs::create_dir_all("docs").unwrap();
    let c = browser.session(false);
    browser.run(async {
        c.goto(&daemon.url("/admin/login")).await?;
        c.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(PASSWORD.1)
            .await?;
        c.find(Locator::Css("form button[type=submit]"))
            .await?
            .press(&c)
            .await?;
        c.set_window_size(1100, 900).await?;
        std::fs::write("docs/admin-queue.png", c.screenshot().await?).unwrap();
        c.set_window_size(400, 860).await?;
        c.goto(&daemon.url("/admin/mentions")).await?;
        std::fs::write("docs/admin-phone.png", c.screenshot().await?).unwrap();
        c.close().await
    });
    // The web component's own look: the page sets only its own body text.
    let page = |theme: &str, bg: &str, fg: &str| {
        format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>Hello, world</title><style>
            body {{ font: 17px/1.6 Georgia, serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; background: {bg}; color: {fg}; }}
            </style></head><body><article><h1>Hello, world</h1><p>The post, as your site renders it.</p></article>
            <h2>Mentions</h2><backfeed-mentions theme="{theme}" target="{post}"></backfeed-mentions>
            <script src="{embed}"></script></body></html>"#,
            post = home.post_url(),
            embed = daemon.url("/embed.js"),
        )
    };
    home.web.set(
        "/blog/shot.html",
        Fixture::html(&page("light", "#fff", "#222")),
    );
    home.web.set(
        "/blog/shot-dark.html",
        Fixture::html(&page("dark", "#0d1117", "#e6edf3")),
    );
    // The server-rendered fragment with /mentions.css, as a static site includes it.
    let fragment = daemon.text(&format!(
        "/mentions.html?target={}",
        percent(&home.post_url())
    ));
    home.web.set(
        "/blog/shot-fragment.html",
        Fixture::html(&format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>Hello, world</title>
            <link rel="stylesheet" href="{css}"><style>
            body {{ font: 17px/1.6 Georgia, serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
            </style></head><body><article><h1>Hello, world</h1><p>The post, as your site renders it.</p></article>
            <h2>Mentions</h2>{fragment}</body></html>"#,
            css = daemon.url("/mentions.css"),
        )),
    );
    let c = browser.session(true);
    browser.run(async {
        for (path, file, width, height) in [
            ("/blog/shot-fragment.html", "docs/fragment.png", 900, 700),
            ("/blog/shot.html", "docs/post-with-mentions.png", 900, 900),
            (
                "/blog/shot-dark.html",
                "docs/post-with-mentions-dark.png",
                900,
                900,
            ),
            (
                "/blog/shot.html",
                "docs/post-with-mentions-phone.png",
                390,
                844,
            ),
        ] {
            c.set_window_size(width, height).await?;
            c.goto(&home.web.url(path)).await?;
            c.wait()
                .for_element(Locator::Css("backfeed-mentions, section.backfeed-mentions"))
                .await?;
            tokio::time::sleep(Duration::from_millis(1500)).await; // the component's fetch
            std::fs::write(file, c.screenshot().await?).unwrap();
        }
        c.close().await
    });
}
