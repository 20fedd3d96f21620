//! PNG decoding (gray conversion) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = latent_datasets::decode_png(data, "fuzz.png") {
        assert_eq!(img.data.len(), img.width * img.height);
    }
});
