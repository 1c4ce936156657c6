//! Verification of arbitrary bytes as a fetched page: decoding, parsing, the link scan, the
//! excerpt and sanitizing must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let url = url::Url::parse("https://alice.example/posts/7").unwrap();
    let keys = vec!["blog.example/2024/hello".to_string()];
    let text = backfeed::fetch::decode_text(data, Some("text/html"));
    let _ = backfeed::verify::verify_html(&text, &url, &keys);
});
