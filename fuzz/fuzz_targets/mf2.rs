//! The microformats reader and the representative h-card over arbitrary documents.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let url = url::Url::parse("http://example.com/").unwrap();
    let html = String::from_utf8_lossy(data);
    for item in backfeed::verify::mf2::parse_document(&html, &url) {
        let _ = item.to_json();
    }
    let _ = backfeed::verify::representative_hcard(&html, &url);
});
