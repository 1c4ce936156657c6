//! What one hostile page may cost the verifier, measured in bytes allocated rather than time:
//! this test binary counts every allocation (its own global allocator) and checks the peak
//! while the verifier reads pages an adversarial probe used. Timings live in `cargo bench`.

use backfeed::model::Outcome;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time: the counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Bytes allocated at the peak of `f`, above what was live before it.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    eprintln!("peak allocation: {:.1} MiB", peak as f64 / MIB as f64);
    (out, peak)
}

const POST: &str = "https://blog.example/2024/hello/";
const MIB: usize = 1024 * 1024;

fn verify(html: &str) -> (Outcome, usize) {
    let url = url::Url::parse("https://hostile.example/page").unwrap();
    let keys = vec![backfeed::model::match_key(POST).unwrap()];
    peak_of(|| backfeed::verify::verify_html(html, &url, &keys))
}

fn entry(content: &str) -> String {
    format!(
        "<div class=\"h-entry\"><a class=\"u-in-reply-to\" href=\"{POST}\">re</a>\
         <div class=\"e-content\">{content}</div></div>"
    )
}

#[test]
fn two_megabytes_of_line_breaks_in_content_cost_little() {
    // The probe: 500,000 <br> inside e-content took 210 MB per job.
    let html = entry(&"<br>".repeat(500_000));
    let (outcome, peak) = verify(&html);
    assert!(matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
    assert!(peak < 32 * MIB, "{} MiB", peak / MIB);
}

#[test]
fn the_largest_page_the_budget_allows_stays_bounded() {
    // Just under the element cap, 2 MB: a tree the verifier must read whole.
    let html = entry(&"<p>w <b>bold</b> <br>".repeat(30_000));
    assert!(html.len() <= 2 * MIB);
    let (outcome, peak) = verify(&html);
    let Outcome::Verified(x) = outcome else {
        panic!("{outcome:?}")
    };
    let content = x.content_html.unwrap_or_default();
    assert!(content.len() <= 8 * 1024, "{}", content.len());
    assert!(peak < 64 * MIB, "{} MiB", peak / MIB);
}

#[test]
fn quadratic_nesting_is_refused_after_bounded_work() {
    for unit in ["<div/>", "<div></i>", "<div>", "<a><i>"] {
        let html = format!("<a href=\"{POST}\">x</a>{}", unit.repeat(50_000));
        let (outcome, peak) = verify(&html);
        assert!(
            matches!(&outcome, Outcome::Refused(r) if r.contains("not parsed")),
            "{unit}: {outcome:?}"
        );
        assert!(peak < 8 * MIB, "{unit}: {} MiB", peak / MIB);
    }
}

#[test]
fn hostile_author_links_and_names_are_cleaned() {
    let html = format!(
        "<div class=\"h-entry\"><a href=\"{POST}\">x</a>\
         <a class=\"p-author h-card\" href=\"javascript:alert(1)\">\
         <img class=\"u-photo\" src=\"data:image/png;base64,AAAA\">Eve\u{202E}gnp.exe\r\nX</a></div>"
    );
    let (outcome, _) = verify(&html);
    let Outcome::Verified(mut x) = outcome else {
        panic!("{outcome:?}")
    };
    backfeed::verify::bound_extracted(&mut x);
    assert_eq!(x.author.url, None, "only http(s) leaves the verifier");
    assert_eq!(x.author.photo, None);
    let name = x.author.name.unwrap();
    assert!(name.contains("Evegnp.exe X"), "{name:?}");
    assert!(
        !name.contains(['\u{202E}', '\r', '\n']),
        "no reordering or line breaks: {name:?}"
    );
}
