//! Time the 3×3 convolutions of the `unet_step` workload (batch 8): the `latent-linalg` im2col
//! kernels against the shifted-product kernels of `latent_unet::fast_conv`, forward and backward
//! (input and weight gradients). Runs alternate between the two and the minimum of 9 is
//! reported, which is robust against other load on the machine.
//!
//! `cargo run --release -p latent-unet --example conv_profile`
use latent_linalg::Tensor4;
use latent_linalg::conv::{Conv2dSpec, conv2d, conv2d_backward_input, conv2d_backward_weight};
use latent_unet::fast_conv::{conv3x3, conv3x3_backward};
use std::time::Instant;

fn ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let layers =
        [(1, 16, 64), (16, 16, 64), (16, 32, 32), (32, 32, 32), (32, 64, 16), (64, 64, 16), (64, 32, 32), (32, 16, 64)];
    let (mut ta, mut tb) = (0.0, 0.0);
    for &(c, o, s) in &layers {
        let x = Tensor4::<f32>::from_fn([8, c, s, s], |[a, b, i, j]| ((a + b + i * j) % 7) as f32).unwrap();
        let w = Tensor4::<f32>::from_fn([o, c, 3, 3], |[a, b, i, j]| ((a + b + i * j) % 5) as f32 * 0.1).unwrap();
        let spec = Conv2dSpec::new(1, 1);
        let y = conv2d(&x, &w, None, &spec).unwrap();
        let mut im2col = || {
            conv2d(&x, &w, None, &spec).unwrap();
            conv2d_backward_input(&y, &w, (s, s), &spec).unwrap();
            conv2d_backward_weight(&x, &y, (3, 3), &spec).unwrap();
        };
        let mut shifted = || {
            conv3x3(&x, &w, None, 1).unwrap();
            conv3x3_backward(&x, &w, &y, 1, true).unwrap();
        };
        let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..9 {
            a = a.min(ms(&mut im2col));
            b = b.min(ms(&mut shifted));
        }
        println!("{c:3}->{o:3} @{s:2}: im2col fwd+bwd {a:6.2} ms, shifted {b:6.2} ms ({:.2}x)", a / b);
        ta += a;
        tb += b;
    }
    println!("total: im2col {ta:.1} ms, shifted {tb:.1} ms");
}
