//! The `backfeed` binary: everything lives in the library; see `backfeed --help`.

fn main() {
    std::process::exit(backfeed::cli::run());
}
