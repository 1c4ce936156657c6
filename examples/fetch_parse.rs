//! The baseline for `benches/e2e_verify.sh`: a bare fetch-and-parse loop over a list of URLs
//! (reqwest + scraper, `concurrency` requests in flight, no per-host limit, no store), printing
//! pages per second. backfeed's end-to-end verification is measured against this.
//!
//! Usage: fetch_parse URLS_FILE [CONCURRENCY]

use futures_util::StreamExt;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let urls: Vec<String> = std::fs::read_to_string(&args[1])
        .expect("URL list")
        .lines()
        .map(str::to_string)
        .collect();
    let concurrency: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(32);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let started = std::time::Instant::now();
    let results: Vec<usize> = futures_util::stream::iter(urls.iter())
        .map(|url| {
            let client = client.clone();
            async move {
                let response = client.get(url).send().await.ok()?;
                if !response.status().is_success() {
                    return None;
                }
                let body = response.bytes().await.ok()?;
                let text = String::from_utf8_lossy(&body).into_owned();
                let links = tokio::task::spawn_blocking(move || {
                    let doc = scraper::Html::parse_document(&text);
                    let a = scraper::Selector::parse("a[href]").expect("selector");
                    doc.select(&a).count()
                })
                .await
                .ok()?;
                Some(links)
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|r| async move { r })
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fetched+parsed {} of {} pages in {secs:.2} s: {:.0} pages/s",
        results.len(),
        urls.len(),
        results.len() as f64 / secs
    );
}
