//! `.npy` reader/writer: round trips, DMatrix conversion, strict header parsing, bench inputs.

mod common;

use common::{TempDir, shared_bench_dir};
use latent_datasets::npy::{NpyArray, NpyData, NpyDtype, read_npy, read_npy_bytes, write_npy};
use latent_datasets::{DMatrix, DatasetError};
use proptest::prelude::*;

fn data_of(dtype: usize, n: usize, seed: u64) -> NpyData {
    let v = |k: usize| (seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(17);
    match dtype {
        0 => NpyData::U8((0..n).map(|k| v(k) as u8).collect()),
        1 => NpyData::F32((0..n).map(|k| (v(k) % 10_000) as f32 / 7.0 - 300.0).collect()),
        _ => NpyData::F64((0..n).map(|k| (v(k) % 1_000_000) as f64 / 13.0 - 1e4).collect()),
    }
}

/// Hand-built file with an arbitrary header (version 1.0 unless given).
fn npy_with_header(version: (u8, u8), dict: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version.0, version.1]);
    let h = format!("{dict}\n");
    if version.0 == 1 {
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(payload);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn write_read_round_trip(dtype in 0usize..3, shape in prop::collection::vec(0usize..6, 0..5), fortran in any::<bool>(), seed in any::<u64>()) {
        let n: usize = shape.iter().product();
        let a = NpyArray::new(shape.clone(), fortran, data_of(dtype, n, seed)).unwrap();
        let bytes = a.to_bytes();
        // NumPy's alignment: data starts at a multiple of 64
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        prop_assert_eq!((10 + hlen) % 64, 0);
        let dir = TempDir::new("npy_rt");
        let p = dir.join("a.npy");
        write_npy(&p, &a).unwrap();
        let b = read_npy(&p).unwrap();
        prop_assert_eq!(b.shape(), shape.as_slice());
        prop_assert_eq!(b, a.clone());
        // the C-order copy holds the same elements at the same multi-indices
        let c = a.to_c_order();
        prop_assert!(!c.fortran_order());
        if shape.len() == 3 && n > 0 {
            for i in 0..shape[0] { for j in 0..shape[1] { for k in 0..shape[2] {
                prop_assert_eq!(a.get_f64(&[i, j, k]), c.get_f64(&[i, j, k]));
            }}}
        }
    }

    #[test]
    fn dmatrix_round_trip_both_orders(r in 1usize..7, c in 1usize..7, fortran in any::<bool>(), seed in any::<u64>()) {
        let m = DMatrix::<f64>::from_fn(r, c, |i, j| (seed % 1000) as f64 + 10.0 * i as f64 - j as f64 * 0.5);
        let a = NpyArray::from_dmatrix(&m, fortran);
        prop_assert_eq!(a.dtype(), NpyDtype::F64);
        prop_assert_eq!(a.shape(), &[r, c]);
        prop_assert_eq!(a.get_f64(&[r - 1, c - 1]), Some(m[(r - 1, c - 1)]));
        let back = read_npy_bytes(&a.to_bytes(), "m.npy").unwrap().to_dmatrix::<f64>().unwrap();
        prop_assert_eq!(back, m);
    }
}

#[test]
fn order_is_respected_when_converting() {
    // the same logical 2x3 matrix stored both ways
    let c = NpyArray::new(vec![2, 3], false, NpyData::F32(vec![1., 2., 3., 4., 5., 6.])).unwrap();
    let f = NpyArray::new(vec![2, 3], true, NpyData::F32(vec![1., 4., 2., 5., 3., 6.])).unwrap();
    let expect = DMatrix::<f32>::from_row_slice(2, 3, &[1., 2., 3., 4., 5., 6.]);
    assert_eq!(c.to_dmatrix::<f32>().unwrap(), expect);
    assert_eq!(f.to_dmatrix::<f32>().unwrap(), expect);
    assert_eq!(f.to_c_order(), c);
    assert_eq!(f.to_f64_vec_c_order(), vec![1., 2., 3., 4., 5., 6.]);
    // 1-D → column, u8 values unscaled, 3-D rejected
    let v = NpyArray::new(vec![3], false, NpyData::U8(vec![0, 128, 255])).unwrap();
    assert_eq!(v.to_dmatrix::<f64>().unwrap(), DMatrix::from_column_slice(3, 1, &[0., 128., 255.]));
    let t = NpyArray::new(vec![1, 1, 1], false, NpyData::U8(vec![1])).unwrap();
    assert!(matches!(t.to_dmatrix::<f32>(), Err(DatasetError::InvalidParameter { .. })));
    let m32 = NpyArray::from_dmatrix(&expect, false);
    assert_eq!(m32.dtype(), NpyDtype::F32);
    assert_eq!(m32, c);
}

#[test]
fn header_text_is_what_numpy_writes() {
    let a = NpyArray::new(vec![64, 256], false, NpyData::F32(vec![0.0; 64 * 256])).unwrap();
    let b = a.to_bytes();
    let h = std::str::from_utf8(&b[10..128]).unwrap();
    assert!(h.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (64, 256), }"), "{h}");
    assert!(h.ends_with('\n'));
    let one = NpyArray::new(vec![5], true, NpyData::U8(vec![0; 5])).unwrap().to_bytes();
    assert!(
        std::str::from_utf8(&one[10..74]).unwrap().contains("'descr': '|u1', 'fortran_order': True, 'shape': (5,)")
    );
}

#[test]
fn versions_2_and_3_and_legacy_spellings_parse() {
    let payload: Vec<u8> = [1.5f64, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    for v in [(1, 0), (2, 0), (3, 0)] {
        let b = npy_with_header(v, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", &payload);
        let a = read_npy_bytes(&b, "v.npy").unwrap();
        assert_eq!(a.data(), &NpyData::F64(vec![1.5, -2.0]), "version {v:?}");
    }
    // key order, double quotes, no trailing comma, Python-2 long suffix, big-endian
    let be: Vec<u8> = [3.0f32, 4.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let b = npy_with_header((1, 0), "{\"shape\": (1L, 2L), \"fortran_order\": True, \"descr\": \">f4\"}", &be);
    let a = read_npy_bytes(&b, "legacy.npy").unwrap();
    assert_eq!((a.shape(), a.fortran_order(), a.data()), (&[1usize, 2][..], true, &NpyData::F32(vec![3.0, 4.0])));
    // 0-d scalar
    let b = npy_with_header((1, 0), "{'descr': 'u1', 'fortran_order': False, 'shape': ()}", &[42]);
    assert_eq!(read_npy_bytes(&b, "s.npy").unwrap().get_f64(&[]), Some(42.0));
}

#[test]
fn bad_headers_are_format_errors() {
    let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    let bad = [
        "{'descr': '<f4', 'fortran_order': False}",                 // missing shape
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",      // not a bool
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1)}",   // 1-tuple without comma
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", // negative dim
        "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}",   // list, not tuple
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", // unknown key
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", // duplicate
        "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}",   // missing comma
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} extra", // trailing text
        "'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",   // no brace
        "{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}",   // broken quotes
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", // overflow
        "",                                                         // empty
    ];
    let payload = 1.0f32.to_le_bytes();
    assert!(read_npy_bytes(&npy_with_header((1, 0), ok, &payload), "ok.npy").is_ok());
    for h in bad {
        let e = read_npy_bytes(&npy_with_header((1, 0), h, &payload), "bad.npy").unwrap_err();
        assert!(matches!(&e, DatasetError::Format { path, .. } if path.ends_with("bad.npy")), "{h:?} gave {e}");
    }
    // header without the terminating newline
    let mut b = npy_with_header((1, 0), ok, &payload);
    let nl = 10 + ok.len();
    b[nl] = b' ';
    assert!(matches!(read_npy_bytes(&b, "nonl.npy"), Err(DatasetError::Format { .. })));
    // bad magic and unknown version
    let mut b = npy_with_header((1, 0), ok, &payload);
    b[1] = b'X';
    assert!(matches!(read_npy_bytes(&b, "m.npy"), Err(DatasetError::Format { what, .. }) if what.contains("magic")));
    let b = npy_with_header((4, 0), ok, &payload);
    assert!(matches!(read_npy_bytes(&b, "v.npy"), Err(DatasetError::Format { what, .. }) if what.contains("version")));
    // v3 header that is not UTF-8
    let mut b = npy_with_header((3, 0), ok, &payload);
    b[14] = 0xFF;
    assert!(matches!(read_npy_bytes(&b, "u.npy"), Err(DatasetError::Format { .. })));
}

#[test]
fn wrong_dtypes_are_unsupported() {
    for d in ["<i8", "<f2", "<c16", "|b1", "<U4", "|O"] {
        let dict = format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (1,), }}");
        let e = read_npy_bytes(&npy_with_header((1, 0), &dict, &[0; 16]), "dt.npy").unwrap_err();
        assert!(matches!(&e, DatasetError::Unsupported { what, .. } if what.contains(d)), "{d}: {e}");
    }
    // structured dtype (a list) is rejected with a format error explaining it
    let dict = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let e = read_npy_bytes(&npy_with_header((1, 0), dict, &[0; 4]), "st.npy").unwrap_err();
    assert!(e.to_string().contains("structured"), "{e}");
}

#[test]
fn truncated_and_oversized_data() {
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
    let full = [0u8; 48];
    assert!(read_npy_bytes(&npy_with_header((1, 0), dict, &full), "ok.npy").is_ok());
    let e = read_npy_bytes(&npy_with_header((1, 0), dict, &full[..47]), "short.npy").unwrap_err();
    assert!(matches!(e, DatasetError::Truncated { .. }), "{e}");
    let mut long = full.to_vec();
    long.push(0);
    assert!(matches!(
        read_npy_bytes(&npy_with_header((1, 0), dict, &long), "long.npy"),
        Err(DatasetError::Format { .. })
    ));
    // a shape claiming 10^12 elements against 48 bytes
    let dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000), }";
    assert!(matches!(
        read_npy_bytes(&npy_with_header((1, 0), dict, &full), "huge.npy"),
        Err(DatasetError::Truncated { .. })
    ));
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 4), }";
    assert!(matches!(
        read_npy_bytes(&npy_with_header((1, 0), dict, &full), "ovf.npy"),
        Err(DatasetError::Truncated { .. })
    ));
    // header length pointing past the end, and a file shorter than the preamble
    let mut b = npy_with_header((1, 0), dict, &[]);
    b[8] = 0xFF;
    b[9] = 0xFF;
    assert!(matches!(read_npy_bytes(&b, "hl.npy"), Err(DatasetError::Truncated { .. })));
    assert!(matches!(read_npy_bytes(b"\x93NUMPY", "p.npy"), Err(DatasetError::Truncated { .. })));
    let e = read_npy("/nonexistent/latent/codes.npy").unwrap_err();
    assert!(matches!(e, DatasetError::Io { .. }) && e.to_string().contains("codes.npy"));
}

#[test]
fn benchmark_inputs_load() {
    let Some(dir) = shared_bench_dir() else {
        eprintln!("note: ../shared/bench/data not found beside the workspace; skipping benchmark .npy check");
        return;
    };
    let d = read_npy(dir.join("lasso_D.npy")).unwrap();
    assert_eq!((d.shape(), d.dtype()), (&[64usize, 256][..], NpyDtype::F32));
    let m = d.to_dmatrix::<f32>().unwrap();
    assert_eq!(m.shape(), (64, 256));
    assert!(m.iter().all(|v| v.is_finite()));
    let p = read_npy(dir.join("dl_patches_u8.npy")).unwrap();
    assert_eq!((p.shape(), p.dtype()), (&[100_000usize, 64][..], NpyDtype::U8));
    let x = read_npy(dir.join("lasso_X.npy")).unwrap();
    assert_eq!(x.shape(), &[10_000, 64]);
    let d0 = read_npy(dir.join("csc_D0.npy")).unwrap();
    assert_eq!(d0.shape(), &[8, 8, 32]);
    let img = read_npy(dir.join("csc_image.npy")).unwrap();
    assert_eq!(img.shape(), &[256, 256]);
    // writing back reproduces NumPy's bytes exactly
    assert_eq!(d.to_bytes(), std::fs::read(dir.join("lasso_D.npy")).unwrap());
}
