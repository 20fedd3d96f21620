//! U-Net model files (`LTUN-f32` / `LTUN-f64`) on arbitrary bytes, as whole files and as payloads
//! inside a valid header and checksum: loading returns a network or a typed error, never panics
//! or allocates beyond the file; a network that loads must also run.
#![no_main]
use latent_linalg::Tensor4;
use latent_linalg::persist::wrap_payload;
use latent_unet::UNet;
use libfuzzer_sys::fuzz_target;

fn wrap(magic: &[u8; 8], payload: &[u8]) -> Vec<u8> {
    wrap_payload(*magic, 1, payload)
}

fn run(bytes: &[u8]) {
    let Ok(net) = UNet::<f32>::from_bytes(bytes) else { return };
    let back = net.to_bytes().expect("a loaded network serialises");
    assert!(UNet::<f32>::from_bytes(&back).is_ok(), "a saved network loads again");
    let c = net.params().in_channels;
    if let Some(s) = net.geometry().min_input()
        && s <= 48
        && c <= 8
    {
        let x = Tensor4::from_fn([1, c, s, s], |[_, ch, i, j]| ((ch + i * 3 + j) % 5) as f32 / 5.0).unwrap();
        let _ = net.predict(&x);
    }
}

fuzz_target!(|data: &[u8]| {
    run(data);
    let _ = UNet::<f64>::from_bytes(data);
    run(&wrap(b"LTUN-f32", data));
});
