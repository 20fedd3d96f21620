//! The lecture's 2-D toy data: sparse combinations of a few directions (for the λ-sweep figure
//! of sparse coding) and noisy 1-D manifolds in the plane (for the denoising-autoencoder
//! arrow figure). Points are `[x, y]` pairs in `f64`.

use crate::dataset::rng_from_seed;
use crate::error::{Result, invalid};
use latent_linalg::{DMatrix, Real};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Points as a `2 × n` matrix, one point per column.
pub fn points_to_dmatrix<T: Real>(points: &[[f64; 2]]) -> DMatrix<T> {
    DMatrix::from_iterator(2, points.len(), points.iter().flat_map(|p| [T::lit(p[0]), T::lit(p[1])]))
}

/// Samples `x = Σ_k a_k d_k + ε` from a 2-D overcomplete "dictionary" of unit directions.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseDirections {
    /// Unit directions `d_k = (cos θ_k, sin θ_k)`.
    pub directions: Vec<[f64; 2]>,
    /// Per point, the coefficients `a` (one per direction).
    pub coefficients: Vec<Vec<f64>>,
    /// The points `x`.
    pub points: Vec<[f64; 2]>,
}

impl SparseDirections {
    /// The directions as a `2 × K` dictionary matrix.
    pub fn dictionary<T: Real>(&self) -> DMatrix<T> {
        points_to_dmatrix(&self.directions)
    }
    /// The points as a `2 × n` matrix.
    pub fn points_matrix<T: Real>(&self) -> DMatrix<T> {
        points_to_dmatrix(&self.points)
    }
}

/// Laplace(0, b) sample by inversion.
fn laplace(rng: &mut impl Rng, b: f64) -> f64 {
    let u: f64 = rng.random::<f64>() - 0.5;
    -b * u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()
}

/// Points along a few directions: every coefficient `a_k ~ Laplace(0, scale)` (heavy-tailed,
/// mostly small, so points concentrate along the directions in a "star"), plus isotropic
/// Gaussian noise.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `n` | number of points |
/// | `angles_deg` | direction angles in degrees (≥ 1 of them, e.g. `[10, 75, 140]`) |
/// | `scale` | Laplace scale `b > 0` of each coefficient |
/// | `noise_sigma` | standard deviation `≥ 0` of the additive Gaussian noise |
/// | `seed` | ChaCha8 seed |
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for no angles, non-finite angles or bad scales.
///
/// # Example
/// ```
/// let t = latent_datasets::toy::sparse_directions(500, &[10.0, 75.0, 140.0], 1.0, 0.05, 3)?;
/// assert_eq!((t.points.len(), t.directions.len()), (500, 3));
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn sparse_directions(
    n: usize,
    angles_deg: &[f64],
    scale: f64,
    noise_sigma: f64,
    seed: u64,
) -> Result<SparseDirections> {
    if angles_deg.is_empty() || angles_deg.iter().any(|a| !a.is_finite()) {
        return Err(invalid("angles_deg", format!("{angles_deg:?}"), "need at least one finite angle"));
    }
    if !(scale.is_finite() && scale > 0.0) {
        return Err(invalid("scale", scale, "must be finite and > 0"));
    }
    if !(noise_sigma.is_finite() && noise_sigma >= 0.0) {
        return Err(invalid("noise_sigma", noise_sigma, "must be finite and >= 0"));
    }
    let directions: Vec<[f64; 2]> = angles_deg.iter().map(|a| [a.to_radians().cos(), a.to_radians().sin()]).collect();
    let mut rng = rng_from_seed(seed);
    let mut coefficients = Vec::with_capacity(n);
    let mut points = Vec::with_capacity(n);
    for _ in 0..n {
        let a: Vec<f64> = directions.iter().map(|_| laplace(&mut rng, scale)).collect();
        let mut p = [0.0; 2];
        for (ak, d) in a.iter().zip(&directions) {
            p[0] += ak * d[0];
            p[1] += ak * d[1];
        }
        let e0: f64 = StandardNormal.sample(&mut rng);
        let e1: f64 = StandardNormal.sample(&mut rng);
        points.push([p[0] + noise_sigma * e0, p[1] + noise_sigma * e1]);
        coefficients.push(a);
    }
    Ok(SparseDirections { directions, coefficients, points })
}

/// A 1-D manifold in the plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Manifold2d {
    /// Circle of the given radius around the origin.
    Circle {
        /// Radius `> 0`.
        radius: f64,
    },
    /// Archimedean spiral `r(t) = r_max · t`, angle `2π · turns · t`, `t ∈ [0.1, 1]`.
    Spiral {
        /// Number of turns `> 0`.
        turns: f64,
        /// Outer radius `> 0`.
        r_max: f64,
    },
}

/// Clean points on a manifold and their noisy copies (`noisy[i] = clean[i] + ε_i`).
#[derive(Debug, Clone, PartialEq)]
pub struct ManifoldSample {
    /// Points on the manifold.
    pub clean: Vec<[f64; 2]>,
    /// The same points with isotropic Gaussian noise.
    pub noisy: Vec<[f64; 2]>,
}

/// Sample `n` points uniformly in the manifold parameter and add Gaussian noise.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `kind` | circle or spiral |
/// | `n` | number of points |
/// | `noise_sigma` | noise standard deviation `≥ 0` |
/// | `seed` | ChaCha8 seed |
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for non-positive radii/turns or a bad sigma.
///
/// # Example
/// ```
/// use latent_datasets::toy::{Manifold2d, manifold_2d};
/// let s = manifold_2d(Manifold2d::Circle { radius: 1.0 }, 200, 0.1, 0)?;
/// let r = (s.clean[0][0].powi(2) + s.clean[0][1].powi(2)).sqrt();
/// assert!((r - 1.0).abs() < 1e-12);
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn manifold_2d(kind: Manifold2d, n: usize, noise_sigma: f64, seed: u64) -> Result<ManifoldSample> {
    if !(noise_sigma.is_finite() && noise_sigma >= 0.0) {
        return Err(invalid("noise_sigma", noise_sigma, "must be finite and >= 0"));
    }
    match kind {
        Manifold2d::Circle { radius } if !(radius.is_finite() && radius > 0.0) => {
            return Err(invalid("radius", radius, "must be finite and > 0"));
        }
        Manifold2d::Spiral { turns, r_max }
            if !(turns.is_finite() && turns > 0.0 && r_max.is_finite() && r_max > 0.0) =>
        {
            return Err(invalid("turns/r_max", format!("{turns}/{r_max}"), "must be finite and > 0"));
        }
        _ => {}
    }
    let mut rng = rng_from_seed(seed);
    let mut clean = Vec::with_capacity(n);
    let mut noisy = Vec::with_capacity(n);
    for _ in 0..n {
        let t: f64 = rng.random();
        let p = match kind {
            Manifold2d::Circle { radius } => {
                let a = std::f64::consts::TAU * t;
                [radius * a.cos(), radius * a.sin()]
            }
            Manifold2d::Spiral { turns, r_max } => {
                let s = 0.1 + 0.9 * t;
                let a = std::f64::consts::TAU * turns * s;
                [r_max * s * a.cos(), r_max * s * a.sin()]
            }
        };
        let e0: f64 = StandardNormal.sample(&mut rng);
        let e1: f64 = StandardNormal.sample(&mut rng);
        clean.push(p);
        noisy.push([p[0] + noise_sigma * e0, p[1] + noise_sigma * e1]);
    }
    Ok(ManifoldSample { clean, noisy })
}
