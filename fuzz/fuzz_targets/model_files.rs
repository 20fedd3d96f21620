//! Every model/code file format on arbitrary bytes: the container, dictionaries, online states,
//! sparse codes, autoencoder models.
#![no_main]
use libfuzzer_sys::fuzz_target;
use latent_linalg::persist::from_bytes;
use latent_sparse_coding::{FittedDictionary, OnlineState, SparseCode};

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
    let mut file = Vec::new();
    file.extend_from_slice(b"LTNTDICT");
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&(data.len() as u64).to_le_bytes());
    file.extend_from_slice(&latent_linalg::persist::fnv1a64(data).to_le_bytes());
    file.extend_from_slice(data);
    let _ = from_bytes::<FittedDictionary<f64>>(&file, *b"LTNTDICT", 1, p);
});
