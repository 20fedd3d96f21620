//! IDX reader/writer: round trips for every element type, and every corrupt-input case.

mod common;

use common::TempDir;
use latent_datasets::DatasetError;
use latent_datasets::idx::{
    DEFAULT_MAX_BYTES, IdxArray, IdxData, IdxType, read_idx, read_idx_bytes, read_idx_with_limit, write_idx,
};
use proptest::prelude::*;
use std::io::Write;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn data_of(t: IdxType, n: usize, seed: u64) -> IdxData {
    let v = |k: usize| {
        (seed.wrapping_mul(6364136223846793005).wrapping_add((k as u64).wrapping_mul(1442695040888963407)) >> 17) as i64
    };
    match t {
        IdxType::U8 => IdxData::U8((0..n).map(|k| v(k) as u8).collect()),
        IdxType::I8 => IdxData::I8((0..n).map(|k| v(k) as i8).collect()),
        IdxType::I16 => IdxData::I16((0..n).map(|k| v(k) as i16).collect()),
        IdxType::I32 => IdxData::I32((0..n).map(|k| v(k) as i32).collect()),
        IdxType::F32 => IdxData::F32((0..n).map(|k| (v(k) % 100_000) as f32 * 0.37 - 11.0).collect()),
        IdxType::F64 => IdxData::F64((0..n).map(|k| (v(k) % 1_000_000) as f64 * 1e-3 - 7.5).collect()),
    }
}

fn header(code: u8, dims: &[u32]) -> Vec<u8> {
    let mut h = vec![0, 0, code, dims.len() as u8];
    dims.iter().for_each(|d| h.extend_from_slice(&d.to_be_bytes()));
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn write_read_round_trip(t in 0usize..6, dims in prop::collection::vec(0usize..7, 1..5), gz in any::<bool>(), seed in any::<u64>()) {
        let ty = IdxType::ALL[t];
        let n: usize = dims.iter().product();
        let a = IdxArray::new(dims.clone(), data_of(ty, n, seed)).unwrap();
        let dir = TempDir::new("idx_rt");
        let p = dir.join("a.idx");
        write_idx(&p, &a, gz).unwrap();
        let raw = std::fs::read(&p).unwrap();
        prop_assert_eq!(raw.starts_with(&[0x1f, 0x8b]), gz);
        let b = read_idx(&p).unwrap();
        prop_assert_eq!(&b, &a);
        prop_assert_eq!(b.elem_type(), ty);
        // in-memory decoding agrees, and the encoding is byte-exact
        prop_assert_eq!(read_idx_bytes(&a.to_bytes(), "mem", DEFAULT_MAX_BYTES).unwrap(), a.clone());
        prop_assert_eq!(read_idx_bytes(&gzip(&a.to_bytes()), "mem.gz", DEFAULT_MAX_BYTES).unwrap(), a);
    }
}

#[test]
fn big_endian_layout_is_standard() {
    let a = IdxArray::new(vec![2], IdxData::I16(vec![0x0102, -2])).unwrap();
    assert_eq!(a.to_bytes(), vec![0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]);
    let f = IdxArray::new(vec![1, 1], IdxData::F32(vec![1.0])).unwrap();
    assert_eq!(f.to_bytes(), vec![0, 0, 0x0D, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0x3F, 0x80, 0, 0]);
}

#[test]
fn array_constructor_rejects_bad_shapes() {
    assert!(matches!(IdxArray::new(vec![], IdxData::U8(vec![])), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(
        IdxArray::new(vec![2, 2], IdxData::U8(vec![1, 2, 3])),
        Err(DatasetError::InvalidParameter { .. })
    ));
    assert!(matches!(IdxArray::new(vec![1; 256], IdxData::U8(vec![1])), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn wrong_magic_is_format_error() {
    let mut b = header(0x08, &[2]);
    b.extend_from_slice(&[1, 2]);
    b[0] = 1;
    let e = read_idx_bytes(&b, "bad_magic.idx", DEFAULT_MAX_BYTES).unwrap_err();
    assert!(
        matches!(&e, DatasetError::Format { path, what } if path.ends_with("bad_magic.idx") && what.contains("magic")),
        "{e}"
    );
    // a real file: the message names it
    let dir = TempDir::new("idx_magic");
    let p = dir.join("images.idx");
    std::fs::write(&p, b"PK\x03\x04not an idx file").unwrap();
    let e = read_idx(&p).unwrap_err();
    assert!(matches!(e, DatasetError::Format { .. }));
    assert!(e.to_string().contains("images.idx"), "{e}");
}

#[test]
fn unknown_type_code_and_zero_dims_are_format_errors() {
    let mut b = header(0x0A, &[1]);
    b.push(0);
    assert!(
        matches!(read_idx_bytes(&b, "t", DEFAULT_MAX_BYTES), Err(DatasetError::Format { what, .. }) if what.contains("type code"))
    );
    let b = vec![0, 0, 0x08, 0];
    assert!(
        matches!(read_idx_bytes(&b, "z", DEFAULT_MAX_BYTES), Err(DatasetError::Format { what, .. }) if what.contains("zero dimensions"))
    );
}

#[test]
fn dims_not_matching_byte_count() {
    // fewer payload bytes than dims claim → Truncated
    let mut b = header(0x08, &[3, 4]);
    b.extend_from_slice(&[0; 11]);
    assert!(matches!(read_idx_bytes(&b, "short", DEFAULT_MAX_BYTES), Err(DatasetError::Truncated { .. })));
    assert!(matches!(read_idx_bytes(&gzip(&b), "short.gz", DEFAULT_MAX_BYTES), Err(DatasetError::Truncated { .. })));
    // more payload bytes than dims claim → Format (trailing bytes)
    let mut b = header(0x0C, &[2]);
    b.extend_from_slice(&[0; 9]);
    assert!(
        matches!(read_idx_bytes(&b, "long", DEFAULT_MAX_BYTES), Err(DatasetError::Format { what, .. }) if what.contains("trailing"))
    );
    assert!(matches!(read_idx_bytes(&gzip(&b), "long.gz", DEFAULT_MAX_BYTES), Err(DatasetError::Format { .. })));
    // a header cut inside the dimension list
    let b = header(0x08, &[3, 4]);
    assert!(matches!(read_idx_bytes(&b[..9], "hdr", DEFAULT_MAX_BYTES), Err(DatasetError::Truncated { .. })));
    assert!(matches!(read_idx_bytes(&[0, 0], "tiny", DEFAULT_MAX_BYTES), Err(DatasetError::Truncated { .. })));
}

#[test]
fn header_claiming_1e12_elements_is_too_large_without_allocating() {
    // 10^6 × 10^6 u8 = 10^12 bytes claimed, 4 bytes present
    let mut b = header(0x08, &[1_000_000, 1_000_000]);
    b.extend_from_slice(&[1, 2, 3, 4]);
    let e = read_idx_bytes(&b, "huge", DEFAULT_MAX_BYTES).unwrap_err();
    assert!(matches!(e, DatasetError::TooLarge { claimed: 1_000_000_000_000, limit: DEFAULT_MAX_BYTES, .. }), "{e}");
    // same through gzip and through a file on disk
    assert!(matches!(read_idx_bytes(&gzip(&b), "huge.gz", DEFAULT_MAX_BYTES), Err(DatasetError::TooLarge { .. })));
    let dir = TempDir::new("idx_huge");
    let p = dir.join("huge-images-idx3-ubyte.gz");
    std::fs::write(&p, gzip(&b)).unwrap();
    assert!(matches!(read_idx(&p), Err(DatasetError::TooLarge { .. })));
    // product overflowing u64: 4 dims of u32::MAX, f64
    let b = header(0x0E, &[u32::MAX; 4]);
    assert!(matches!(
        read_idx_bytes(&b, "overflow", DEFAULT_MAX_BYTES),
        Err(DatasetError::TooLarge { claimed: u64::MAX, .. })
    ));
    // a gzip bomb-like stream below the limit but above a caller's cap
    let a = IdxArray::new(vec![1000], IdxData::U8(vec![0; 1000])).unwrap();
    let p = dir.join("cap.idx.gz");
    write_idx(&p, &a, true).unwrap();
    assert!(matches!(read_idx_with_limit(&p, 999), Err(DatasetError::TooLarge { claimed: 1000, limit: 999, .. })));
    assert!(read_idx_with_limit(&p, 1000).is_ok());
}

#[test]
fn truncated_gzip_is_truncated_error() {
    let a = IdxArray::new(vec![50, 20], data_of(IdxType::I32, 1000, 3)).unwrap();
    let gz = gzip(&a.to_bytes());
    for cut in [3, 12, gz.len() / 2, gz.len() - 4, gz.len() - 1] {
        let e = read_idx_bytes(&gz[..cut], "cut.gz", DEFAULT_MAX_BYTES).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { .. }), "cut {cut}: {e}");
    }
    let dir = TempDir::new("idx_trunc");
    let p = dir.join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
    let e = read_idx(&p).unwrap_err();
    assert!(matches!(e, DatasetError::Truncated { .. }));
    assert!(e.to_string().contains("t10k-images-idx3-ubyte.gz"));
}

#[test]
fn corrupt_gzip_is_compression_error() {
    let a = IdxArray::new(vec![400], data_of(IdxType::U8, 400, 9)).unwrap();
    let mut gz = gzip(&a.to_bytes());
    // flip bits in the CRC32 trailer: decoding completes but the checksum fails
    let n = gz.len();
    gz[n - 8] ^= 0xFF;
    let e = read_idx_bytes(&gz, "crc.gz", DEFAULT_MAX_BYTES).unwrap_err();
    assert!(matches!(e, DatasetError::Compression { .. }), "{e}");
    // garbage after a valid gzip header
    let mut bad = gzip(&a.to_bytes())[..10].to_vec();
    bad.extend_from_slice(&[0xFF; 40]);
    let e = read_idx_bytes(&bad, "garbage.gz", DEFAULT_MAX_BYTES).unwrap_err();
    assert!(matches!(e, DatasetError::Compression { .. } | DatasetError::Truncated { .. }), "{e}");
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let e = read_idx("/nonexistent/latent/train-images-idx3-ubyte").unwrap_err();
    assert!(matches!(e, DatasetError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/latent/train-images-idx3-ubyte"));
}
