//! The XML-RPC decoder: any body gets a call or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = backfeed::receive::xmlrpc::parse_call(data);
});
