//! Every model/code file format on arbitrary bytes: the container, dictionaries, online states,
//! sparse codes, autoencoder models.
#![no_main]
use latent_linalg::persist::from_bytes;
use latent_sparse_coding::{FittedDictionary, OnlineState, SparseCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("fuzz.bin");
    let _ = from_bytes::<FittedDictionary<f64>>(data, *b"LTNTDICT", 1, p);
    let _ = from_bytes::<OnlineState<f32>>(data, *b"LTNTOLDL", 1, p);
    // autoencoder model files (both scalar types); a model that loads must also run
    if let Ok(m) = latent_autoencoder::Autoencoder::<f32>::from_bytes(data) {
        let _ = m.to_bytes();
    }
    let _ = latent_autoencoder::Autoencoder::<f64>::from_bytes(data);
    // the raw payload too, as if the header were valid
    let cfg = bincode::config::standard().with_limit::<{ 1 << 20 }>();
    let _ = bincode::serde::decode_from_slice::<SparseCode<f64>, _>(data, cfg);
    let _ = bincode::serde::decode_from_slice::<FittedDictionary<f32>, _>(data, cfg);
    // a file built around arbitrary payload bytes with a valid header and checksum
    let file = latent_linalg::persist::wrap_payload(*b"LTNTDICT", 1, data);
    let _ = from_bytes::<FittedDictionary<f64>>(&file, *b"LTNTDICT", 1, p);
});
