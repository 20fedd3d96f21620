//! IDX reader through valid gzip framing of arbitrary content (and truncations of it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|input: (u16, &[u8])| {
    let (cut, data) = input;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if enc.write_all(data).is_err() {
        return;
    }
    let Ok(gz) = enc.finish() else { return };
    let _ = latent_datasets::idx::read_idx_bytes(&gz, "fuzz.idx.gz", 1 << 20);
    let cut = (cut as usize) % (gz.len() + 1);
    let _ = latent_datasets::idx::read_idx_bytes(&gz[..cut], "fuzz-truncated.idx.gz", 1 << 20);
});
