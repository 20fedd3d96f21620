//! Convolutional dictionary files (`LTNTCDLD`) and online-learning states (`LTNTOCDL`) on
//! arbitrary bytes, as whole files and as payloads inside a valid header and checksum: a typed
//! error or a value, never a panic; a dictionary that loads must code an image and a state that
//! loads must take one more online step.
#![no_main]
use latent_conv_coding::{Csc, CscParams, FittedCdl, OnlineCdl, OnlineCdlParams, OnlineCdlState, ParamGuard, Tensor4};
use latent_linalg::persist::wrap_payload;
use libfuzzer_sys::fuzz_target;

fn wrap(magic: &[u8; 8], payload: &[u8]) -> Vec<u8> {
    wrap_payload(*magic, 1, payload)
}

/// A small image of `c` channels at least as large as the filters, when that stays small.
fn image(c: usize, kh: usize, kw: usize) -> Option<Tensor4<f64>> {
    if c > 4 || kh > 12 || kw > 12 {
        return None;
    }
    Tensor4::from_fn([1, c, kh.max(6), kw.max(6)], |[_, ch, i, j]| ((ch * 7 + i * 3 + j) % 5) as f64 / 5.0 - 0.4).ok()
}

fn dictionary(bytes: &[u8]) {
    let Ok(d) = FittedCdl::<f64>::from_bytes(bytes) else { return };
    let back = d.to_bytes().expect("a loaded dictionary serialises");
    assert!(FittedCdl::<f64>::from_bytes(&back).is_ok(), "a saved dictionary loads again");
    let f = &d.filters;
    if let Some(x) = image(f.channels(), f.kh(), f.kw())
        && f.count() <= 16
        && let Ok(coder) = CscParams::new(d.lambda).max_iter(5).check()
    {
        let _ = Csc::from(coder).encode(f, &x);
    }
}

fn state(bytes: &[u8]) {
    let Ok(s) = OnlineCdlState::<f64>::from_bytes(bytes) else { return };
    let back = s.to_bytes().expect("a loaded state serialises");
    assert!(OnlineCdlState::<f64>::from_bytes(&back).is_ok(), "a saved state loads again");
    let (m, c, kh, kw) = (s.filters.count(), s.filters.channels(), s.filters.kh(), s.filters.kw());
    let Some(x) = image(c, kh, kw) else { return };
    if m > 8 {
        return;
    }
    let mut p = OnlineCdlParams::new(m, (kh, kw), 0.1);
    p.code_iters = 3;
    if let Ok(learner) = p.check()
        && let Ok(mut learner) = OnlineCdl::from(learner).with_state(s)
    {
        let _ = learner.partial_fit(&x);
    }
}

fuzz_target!(|data: &[u8]| {
    dictionary(data);
    state(data);
    let _ = FittedCdl::<f32>::from_bytes(data);
    let _ = OnlineCdlState::<f32>::from_bytes(data);
    dictionary(&wrap(b"LTNTCDLD", data));
    state(&wrap(b"LTNTOCDL", data));
});
