//! Patch extraction bounds, normalisation, ZCA and the 1/f whitening filter.

use latent_datasets::patches::{
    OLSHAUSEN_FIELD_F0, PatchSet, Zca, extract_grid_patches, extract_random_patches, normalize_variance,
    reconstruct_from_grid, whiten_1f,
};
use latent_datasets::{DatasetError, GrayImage, data_file, read_png};
use proptest::prelude::*;

/// Pixel value encodes its position, so every patch reveals where it came from.
fn coded(w: usize, h: usize, tag: usize) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| (tag * 1_000_000 + y * 1000 + x) as f32)
}

fn check_patch(p: &[f32], ph: usize, pw: usize, imgs: &[(usize, usize)]) -> bool {
    let v0 = p[0] as usize;
    let (tag, y0, x0) = (v0 / 1_000_000, (v0 / 1000) % 1000, v0 % 1000);
    let Some(&(w, h)) = imgs.get(tag) else { return false };
    if x0 + pw > w || y0 + ph > h {
        return false;
    }
    (0..ph).all(|dy| (0..pw).all(|dx| p[dy * pw + dx] as usize == tag * 1_000_000 + (y0 + dy) * 1000 + x0 + dx))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_patches_stay_inside(sizes in prop::collection::vec((1usize..40, 1usize..40), 1..4), ph in 1usize..12, pw in 1usize..12, count in 0usize..60, seed in any::<u64>()) {
        let imgs: Vec<GrayImage> = sizes.iter().enumerate().map(|(t, &(w, h))| coded(w, h, t)).collect();
        let fits = sizes.iter().all(|&(w, h)| w >= pw && h >= ph);
        match extract_random_patches(&imgs, ph, pw, count, seed) {
            Ok(ps) => {
                prop_assert!(fits);
                prop_assert_eq!((ps.len(), ps.dim()), (count, ph * pw));
                for i in 0..ps.len() {
                    prop_assert!(check_patch(ps.patch(i).unwrap(), ph, pw, &sizes));
                }
                prop_assert_eq!(extract_random_patches(&imgs, ph, pw, count, seed).unwrap(), ps);
            }
            Err(e) => {
                prop_assert!(!fits);
                prop_assert!(matches!(e, DatasetError::InvalidParameter { .. }), "unexpected error {}", e);
            }
        }
    }

    #[test]
    fn grid_patches_stay_inside_and_rebuild(w in 1usize..30, h in 1usize..30, ph in 1usize..10, pw in 1usize..10, stride in 1usize..6) {
        let img = coded(w, h, 0);
        match extract_grid_patches(std::slice::from_ref(&img), ph, pw, stride) {
            Ok(ps) => {
                prop_assert!(w >= pw && h >= ph);
                let expect = ((h - ph) / stride + 1) * ((w - pw) / stride + 1);
                prop_assert_eq!(ps.len(), expect);
                for i in 0..ps.len() {
                    prop_assert!(check_patch(ps.patch(i).unwrap(), ph, pw, &[(w, h)]));
                }
                let r = reconstruct_from_grid(&ps, w, h, stride).unwrap();
                // every covered pixel is rebuilt exactly
                for y in 0..h { for x in 0..w {
                    let covered = (y.saturating_sub(ph - 1)..=y).any(|y0| y0 % stride == 0 && y0 + ph <= h)
                        && (x.saturating_sub(pw - 1)..=x).any(|x0| x0 % stride == 0 && x0 + pw <= w);
                    if covered {
                        prop_assert_eq!(r.get(x, y), img.get(x, y));
                    }
                }}
            }
            Err(e) => {
                prop_assert!(w < pw || h < ph);
                prop_assert!(matches!(e, DatasetError::InvalidParameter { .. }), "unexpected error {}", e);
            }
        }
    }
}

#[test]
fn patch_larger_than_image_and_bad_parameters_are_typed() {
    let img = coded(8, 5, 0);
    let e = extract_random_patches(std::slice::from_ref(&img), 6, 6, 10, 0).unwrap_err();
    assert!(
        matches!(&e, DatasetError::InvalidParameter { reason, .. } if reason.contains("larger than image 0")),
        "{e}"
    );
    assert!(matches!(extract_random_patches(&[], 2, 2, 1, 0), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(
        extract_random_patches(std::slice::from_ref(&img), 0, 2, 1, 0),
        Err(DatasetError::InvalidParameter { .. })
    ));
    assert!(matches!(
        extract_grid_patches(std::slice::from_ref(&img), 2, 2, 0),
        Err(DatasetError::InvalidParameter { .. })
    ));
    let broken = GrayImage { width: 10, height: 10, data: vec![0.0; 5] };
    assert!(matches!(extract_random_patches(&[broken], 2, 2, 1, 0), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(PatchSet::new(2, 2, vec![0.0; 5]), Err(DatasetError::InvalidParameter { .. })));
    let ps = extract_grid_patches(&[img], 2, 2, 1).unwrap();
    assert!(matches!(reconstruct_from_grid(&ps, 9, 5, 1), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn natural_patches_are_deterministic_and_normalise() {
    let img = read_png(data_file("natural-gray/skimage_camera.png").unwrap()).unwrap();
    let a = extract_random_patches(std::slice::from_ref(&img), 8, 8, 500, 11).unwrap();
    let b = extract_random_patches(std::slice::from_ref(&img), 8, 8, 500, 11).unwrap();
    let c = extract_random_patches(std::slice::from_ref(&img), 8, 8, 500, 12).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut m = a.clone();
    let means = m.remove_mean();
    assert_eq!(means.len(), 500);
    for i in 0..m.len() {
        let s: f32 = m.patch(i).unwrap().iter().sum();
        assert!(s.abs() < 1e-3);
    }
    let mut n = a.clone();
    n.contrast_normalize(1e-8).unwrap();
    for i in 0..n.len() {
        let p = n.patch(i).unwrap();
        let var = p.iter().map(|v| v * v).sum::<f32>() / 64.0;
        let orig = a.patch(i).unwrap();
        let flat = orig.iter().all(|&v| v == orig[0]);
        assert!(flat || (var - 1.0).abs() < 1e-2, "patch {i}: var {var}");
    }
    assert!(matches!(n.contrast_normalize(0.0), Err(DatasetError::InvalidParameter { .. })));
    // matrix views
    let x = a.to_dmatrix_cols::<f64>();
    assert_eq!(x.shape(), (64, 500));
    assert_eq!(x[(9, 3)], f64::from(a.patch(3).unwrap()[9]));
    assert_eq!(PatchSet::from_dmatrix_cols(&x, 8, 8).unwrap(), a);
    assert!(PatchSet::from_dmatrix_cols(&x, 8, 7).is_err());
}

#[test]
fn zca_whitens_to_identity_covariance() {
    let img = read_png(data_file("natural-gray/sporco_kodim23.png").unwrap()).unwrap();
    let mut p = extract_random_patches(&[img], 5, 5, 4000, 3).unwrap();
    let zca = Zca::fit(&p, 1e-9).unwrap();
    assert_eq!(zca.matrix().shape(), (25, 25));
    assert!((zca.matrix() - zca.matrix().transpose()).amax() < 1e-9);
    zca.apply(&mut p).unwrap();
    let x = p.to_dmatrix_cols::<f64>();
    let n = x.ncols() as f64;
    let mean = x.column_mean();
    assert!(mean.amax() < 1e-4);
    let xc = &x - &mean * latent_datasets::DMatrix::<f64>::from_element(1, x.ncols(), 1.0);
    let cov = &xc * xc.transpose() / n;
    let id = latent_datasets::DMatrix::<f64>::identity(25, 25);
    assert!((cov - id).amax() < 2e-3, "whitened covariance is not the identity");
    // larger eps shrinks the small-eigenvalue directions; wrong sizes are typed
    assert!(matches!(Zca::fit(&p, 0.0), Err(DatasetError::InvalidParameter { .. })));
    let mut other = PatchSet::new(2, 2, vec![0.0; 8]).unwrap();
    assert!(matches!(zca.apply(&mut other), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(
        Zca::fit(&PatchSet::new(2, 2, vec![0.0; 4]).unwrap(), 1e-3),
        Err(DatasetError::InvalidParameter { .. })
    ));
}

#[test]
fn one_over_f_whitening_flattens_the_spectrum() {
    let img = read_png(data_file("natural-gray/skimage_camera.png").unwrap()).unwrap();
    let w = whiten_1f(&img, OLSHAUSEN_FIELD_F0).unwrap();
    assert_eq!((w.width, w.height), (512, 512));
    assert!(w.mean().abs() < 1e-5, "R(0) = 0 removes the mean");
    assert_eq!(whiten_1f(&img, OLSHAUSEN_FIELD_F0).unwrap(), w);
    // A constant image has only DC, which the filter removes.
    let flat = whiten_1f(&GrayImage::filled(20, 12, 0.7), 0.4).unwrap();
    assert!(flat.data.iter().all(|v| v.abs() < 1e-6));
    // A pure cosine at frequency f is scaled by exactly R(f) = f exp(-(f/f0)^4).
    let (n, k) = (64usize, 8usize);
    let f = k as f64 / n as f64;
    let cosine = GrayImage::from_fn(n, n, |x, _| (std::f64::consts::TAU * f * x as f64).cos() as f32);
    let out = whiten_1f(&cosine, 0.2).unwrap();
    let gain = f * (-(f / 0.2f64).powi(4)).exp();
    for (o, i) in out.data.iter().zip(&cosine.data) {
        assert!((f64::from(*o) - gain * f64::from(*i)).abs() < 1e-5);
    }
    // whitening boosts high frequencies relative to low ones: neighbour differences grow
    let rough = |g: &GrayImage| {
        let m = g.mean();
        let sd = (g.data.iter().map(|v| f64::from(*v - m).powi(2)).sum::<f64>() / g.data.len() as f64).sqrt();
        let d = (0..g.height)
            .flat_map(|y| (1..g.width).map(move |x| (x, y)))
            .map(|(x, y)| f64::from(g.get(x, y).unwrap() - g.get(x - 1, y).unwrap()).powi(2))
            .sum::<f64>();
        (d / g.data.len() as f64).sqrt() / sd
    };
    assert!(rough(&w) > 2.0 * rough(&img));
    let mut set = vec![
        w.clone(),
        whiten_1f(&read_png(data_file("natural-gray/scipy_ascent.png").unwrap()).unwrap(), 0.4).unwrap(),
    ];
    normalize_variance(&mut set, 0.1).unwrap();
    let var = |g: &GrayImage| {
        let m = g.mean();
        g.data.iter().map(|v| f64::from(*v - m).powi(2)).sum::<f64>() / g.data.len() as f64
    };
    assert!(((var(&set[0]) + var(&set[1])) / 2.0 - 0.1).abs() < 1e-4);
    assert!(matches!(whiten_1f(&img, -1.0), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(whiten_1f(&GrayImage::filled(0, 0, 0.0), 0.4), Err(DatasetError::InvalidParameter { .. })));
}
