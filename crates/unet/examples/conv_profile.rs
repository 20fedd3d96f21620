//! Time the latent-linalg convolution kernels on the layer shapes of the `unet_step` workload.
use latent_linalg::Tensor4;
use latent_linalg::conv::*;
use std::time::Instant;

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[3]
}

fn main() {
    let layers = [
        (1, 16, 64),
        (16, 16, 64),
        (16, 32, 32),
        (32, 32, 32),
        (32, 64, 16),
        (64, 64, 16),
        (64, 32, 32),
        (32, 32, 32),
        (32, 16, 64),
        (16, 16, 64),
    ];
    let (mut tf, mut ti, mut tw) = (0.0, 0.0, 0.0);
    for &(c, o, s) in &layers {
        let x = Tensor4::<f32>::from_fn([8, c, s, s], |[a, b, i, j]| ((a + b + i * j) % 7) as f32).unwrap();
        let w = Tensor4::<f32>::from_fn([o, c, 3, 3], |[a, b, i, j]| ((a + b + i * j) % 5) as f32 * 0.1).unwrap();
        let spec = Conv2dSpec::new(1, 1);
        let y = conv2d(&x, &w, None, &spec).unwrap();
        let f = time(|| {
            conv2d(&x, &w, None, &spec).unwrap();
        });
        let bi = time(|| {
            conv2d_backward_input(&y, &w, (s, s), &spec).unwrap();
        });
        let bw = time(|| {
            conv2d_backward_weight(&x, &y, (3, 3), &spec).unwrap();
        });
        let gf = 2.0 * 8.0 * (o * c * 9 * s * s) as f64 / 1e6;
        println!(
            "{c:3}->{o:3} @{s:2}: fwd {f:6.2} ms ({:5.1} GF/s)  bwd_in {bi:6.2} ({:5.1})  bwd_w {bw:6.2} ({:5.1})",
            gf / f,
            gf / bi,
            gf / bw
        );
        tf += f;
        ti += bi;
        tw += bw;
    }
    for &(c, o, s) in &[(64, 32, 16), (32, 16, 32)] {
        let x = Tensor4::<f32>::from_fn([8, c, s, s], |[a, b, i, j]| ((a + b + i * j) % 7) as f32).unwrap();
        let w = Tensor4::<f32>::from_fn([c, o, 2, 2], |[a, b, i, j]| ((a + b + i * j) % 5) as f32 * 0.1).unwrap();
        let spec = Conv2dSpec::new(2, 0);
        let y = conv_transpose2d(&x, &w, None, &spec, (0, 0)).unwrap();
        let f = time(|| {
            conv_transpose2d(&x, &w, None, &spec, (0, 0)).unwrap();
        });
        let bi = time(|| {
            conv_transpose2d_backward_input(&y, &w, (s, s), &spec, (0, 0)).unwrap();
        });
        let bw = time(|| {
            conv_transpose2d_backward_weight(&x, &y, (2, 2), &spec, (0, 0)).unwrap();
        });
        println!("convT {c}->{o} @{s}: fwd {f:6.2} bwd_in {bi:6.2} bwd_w {bw:6.2}");
        tf += f;
        ti += bi;
        tw += bw;
    }
    println!("total fwd {tf:.1} ms, bwd_in {ti:.1} ms, bwd_w {tw:.1} ms");
}
