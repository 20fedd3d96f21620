use latent_conv_coding::*;
use std::time::Instant;
fn npy_f32(path: &str) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let sh = &header[header.find("'shape': (").unwrap() + 10..];
    let sh = &sh[..sh.find(')').unwrap()];
    let shape: Vec<usize> = sh.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
    let data = b[10 + hl..].chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    (shape, data)
}
fn run<T: FftReal>(img: &[f32], d0: &[f32]) {
    let x = Tensor4::from_vec([1, 1, 256, 256], img.iter().map(|&v| T::lit(v as f64)).collect()).unwrap();
    let dv: Vec<T> = d0.iter().map(|&v| T::lit(v as f64)).collect();
    let f = Filters::from_hwm(8, 8, 32, &dv).unwrap();
    let p = CscParams::new(T::lit(0.05)).max_iter(50).tol(0.0).history(true)
        .admm(AdmmParams::default().rho(3.5).relax(1.8).auto_rho(Some(AutoRho::every_iteration())));
    let coder = p.check().unwrap();
    let _ = coder.encode(&f, &x).unwrap();
    let t = Instant::now();
    let c = coder.encode(&f, &x).unwrap();
    let s = t.elapsed().as_secs_f64();
    let i = &c.info[0];
    println!("{}: {s:.3} s ({:.4} s/it) obj(y) {:.4} obj(x) {:.4} nnz {:.4} rho {:.3}", T::NAME, s / 50.0, i.objective, i.history.last().unwrap().objective, i.nnz_fraction, i.rho);
}
fn dl<T: FftReal>(img: &[f32], d0: &[f32], solver: DictSolver) {
    let mut x = Tensor4::<T>::zeros([4, 1, 128, 128]).unwrap();
    for k in 0..4 {
        let (oy, ox) = ((k / 2) * 128, (k % 2) * 128);
        for i in 0..128 {
            for j in 0..128 {
                *x.get_mut([k, 0, i, j]).unwrap() = T::lit(img[(oy + i) * 256 + ox + j] as f64);
            }
        }
    }
    let dv: Vec<T> = d0.iter().map(|&v| T::lit(v as f64)).collect();
    let f = Filters::from_hwm(8, 8, 32, &dv).unwrap().select(0..16).unwrap();
    let mut p = CdlParams::new(16, (8, 8), T::lit(0.05));
    p.iterations = 20;
    p.dict_solver = solver;
    let l = p.check().unwrap();
    let t = Instant::now();
    let fit = l.fit_with(&x, Some(&f), None).unwrap();
    let s = t.elapsed().as_secs_f64();
    let h: Vec<String> = fit.history.iter().map(|h| format!("{:.3}", h.objective)).collect();
    println!("dl {} {:?}: {s:.3} s obj {:.4}  {}", T::NAME, solver, fit.history.last().unwrap().objective, h.join(" "));
}
fn main() {
    let (_, img) = npy_f32("/work/shared/bench/data/csc_image.npy");
    let (_, d0) = npy_f32("/work/shared/bench/data/csc_D0.npy");
    dl::<f64>(&img, &d0, DictSolver::Consensus { rho: Some(10.0), relax: 1.8, auto_rho: Some(AutoRho::interleaved()) });
    dl::<f32>(&img, &d0, DictSolver::Consensus { rho: Some(10.0), relax: 1.8, auto_rho: Some(AutoRho::interleaved()) });
    dl::<f64>(&img, &d0, DictSolver::Fista { eta: 2.0 });
    if std::env::var("DL_ONLY").is_ok() { return; }
    let (_, img) = npy_f32("/work/shared/bench/data/csc_image.npy");
    let (_, d0) = npy_f32("/work/shared/bench/data/csc_D0.npy");
    run::<f64>(&img, &d0);
    run::<f32>(&img, &d0);
}
