//! NumPy .npy reader on arbitrary bytes; whatever parses must convert without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = latent_datasets::npy::read_npy_bytes(data, "fuzz.npy") {
        let _ = a.to_dmatrix::<f64>();
        let _ = a.to_c_order();
        let _ = a.to_bytes();
    }
});
