//! IDX reader (raw and, when the bytes start with the gzip magic, gzip) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // a small cap: a header claiming more must be refused before allocation
    let _ = latent_datasets::idx::read_idx_bytes(data, "fuzz.idx", 1 << 20);
});
