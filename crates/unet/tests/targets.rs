//! Training targets and evaluation: the weight map, class maps, instances, tiling helpers.

use latent_unet::metrics::{evaluate_classes, instances_from_classes};
use latent_unet::tile::{mirror_index, mirror_pad};
use latent_unet::weight_map::{WeightMapParams, class_map, nearest_two_distances, weight_map};
use latent_unet::{Geometry, Padding, UnetError};
use proptest::prelude::*;

/// Two discs of radius `r` on a `w × h` grid, centres `gap` pixels of background apart.
fn two_discs(w: usize, h: usize, r: f64, gap: usize) -> (Vec<u32>, usize) {
    let cy = h as f64 / 2.0;
    let ca = 20.0;
    let cb = ca + 2.0 * r + 1.0 + gap as f64;
    let inst = (0..w * h)
        .map(|k| {
            let (x, y) = ((k % w) as f64, (k / w) as f64);
            if (x - ca).powi(2) + (y - cy).powi(2) <= r * r {
                1
            } else if (x - cb).powi(2) + (y - cy).powi(2) <= r * r {
                2
            } else {
                0
            }
        })
        .collect();
    (inst, (ca + r) as usize) // last column of disc A on the centre row
}

#[test]
fn weight_map_peaks_between_touching_discs() {
    let (w, h) = (64, 40);
    for gap in [0usize, 2] {
        let (inst, edge) = two_discs(w, h, 9.0, gap);
        for classes in [2, 3] {
            let cls = class_map(&inst, w, h, classes).unwrap();
            let p = WeightMapParams::default();
            let wm = weight_map(&inst, &cls, w, h, classes, &p).unwrap();
            let (k_max, &v_max) = wm.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
            let (x, y) = (k_max % w, k_max / w);
            // the maximum lies on the line between the discs, in the gap or on the contact
            assert!((edge..=edge + gap + 1).contains(&x), "gap {gap}, {classes} classes: peak at ({x}, {y})");
            assert!((y as f64 - h as f64 / 2.0).abs() <= 1.0, "peak row {y}");
            assert!(f64::from(v_max) > 0.5 * p.w0, "peak {v_max}");
            let row = h / 2 * w;
            let between = wm[row + edge + gap / 2 + 1];
            assert!(between > wm[row + 20] && between > wm[row + 2] && between > wm[0]);
            assert!(f64::from(wm[0]) < 2.0, "far background keeps (about) its class weight: {}", wm[0]);
        }
    }
    // one disc: no separation term anywhere, weights are the class weights
    let inst: Vec<u32> = two_discs(w, h, 9.0, 0).0.into_iter().map(|l| u32::from(l == 1)).collect();
    let cls = class_map(&inst, w, h, 2).unwrap();
    let wm = weight_map(&inst, &cls, w, h, 2, &WeightMapParams::default()).unwrap();
    let mut vals: Vec<u32> = wm.iter().map(|v| v.to_bits()).collect();
    vals.sort_unstable();
    vals.dedup();
    assert_eq!(vals.len(), 2, "one weight per class");
    // class balance: the mean class weight is 1
    let wc = weight_map(&inst, &cls, w, h, 2, &WeightMapParams { w0: 0.0, ..Default::default() }).unwrap();
    let mean = wc.iter().map(|&v| f64::from(v)).sum::<f64>() / wc.len() as f64;
    assert!((mean - 1.0).abs() < 1e-5, "{mean}");
    // bad settings are typed errors naming the value
    for (p, name) in [
        (WeightMapParams { sigma: 0.0, ..Default::default() }, "sigma"),
        (WeightMapParams { w0: -1.0, ..Default::default() }, "w0"),
    ] {
        assert!(
            matches!(weight_map(&inst, &cls, w, h, 2, &p), Err(UnetError::InvalidParameter { name: n, .. }) if n == name)
        );
    }
}

#[test]
fn distances_to_the_two_nearest_cells() {
    // cells at columns 0 and 6 of a 7×1 strip
    let inst = [1, 0, 0, 0, 0, 0, 2];
    let (d1, d2) = nearest_two_distances(&inst, 7, 1, 10).unwrap();
    assert_eq!(d1, vec![0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 0.0]);
    assert_eq!(d2, vec![6.0, 5.0, 4.0, 3.0, 4.0, 5.0, 6.0]);
    // beyond the radius a cell is not seen
    let (_, d2) = nearest_two_distances(&inst, 7, 1, 2).unwrap();
    assert!(d2[3].is_infinite());
}

#[test]
fn the_real_nuclei_image_gives_sensible_targets() {
    let s = latent_datasets::cells::CellSample::load_dsb2018().unwrap();
    let (w, h) = (s.width(), s.height());
    let inst = &s.instances().data;
    let cls = class_map(inst, w, h, 3).unwrap();
    // the truth's own class map: pixel-perfect, and every one of the 125 instances is recovered;
    // cells whose one-pixel-eroded interior falls apart add a fragment or two
    let m = evaluate_classes(&cls, inst, w, h, 3, 0).unwrap();
    assert_eq!(m.iou, 1.0);
    assert_eq!((m.true_positives, m.false_negatives), (125, 0));
    assert!(m.false_positives <= 2 && m.f1 > 0.99, "{m:?}");
    // the two-class map merges touching cells
    let m2 = evaluate_classes(&class_map(inst, w, h, 2).unwrap(), inst, w, h, 2, 0).unwrap();
    assert_eq!(m2.iou, 1.0);
    assert!(m2.true_positives < 125 && m2.f1 < m.f1, "{m2:?}");
    let wm = weight_map(inst, &cls, w, h, 3, &WeightMapParams::default()).unwrap();
    assert!(wm.iter().all(|v| v.is_finite() && *v > 0.0));
}

fn rects() -> impl Strategy<Value = Vec<(usize, usize, usize, usize)>> {
    // up to 6 rectangles, each in its own 10×10 cell of a 30×20 grid, at least 3×3
    proptest::collection::vec((0usize..6, 0usize..4, 0usize..4, 3usize..7, 3usize..7), 1..6).prop_map(|v| {
        let mut seen = std::collections::BTreeMap::new();
        for (cell, ox, oy, rw, rh) in v {
            seen.entry(cell).or_insert(((cell % 3) * 10 + ox, (cell / 3) * 10 + oy, rw, rh));
        }
        seen.into_values().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn three_class_maps_recover_separate_instances(rs in rects()) {
        let (w, h) = (30, 20);
        let mut inst = vec![0u32; w * h];
        for (i, &(x0, y0, rw, rh)) in rs.iter().enumerate() {
            for y in y0..y0 + rh {
                for x in x0..x0 + rw {
                    inst[y * w + x] = i as u32 + 1;
                }
            }
        }
        let cls = class_map(&inst, w, h, 3).unwrap();
        let back = instances_from_classes(&cls, w, h, 3, 1).unwrap();
        // same partition: a bijection between labels
        let mut map = std::collections::HashMap::new();
        for (&a, &b) in inst.iter().zip(&back) {
            prop_assert_eq!(a == 0, b == 0);
            if a != 0 {
                prop_assert_eq!(*map.entry(a).or_insert(b), b);
            }
        }
        let mut targets: Vec<u32> = map.values().copied().collect();
        targets.sort_unstable();
        targets.dedup();
        prop_assert_eq!(targets.len(), rs.len());
    }

    #[test]
    fn mirror_padding_keeps_the_image_and_reflects(h in 1usize..9, w in 1usize..9, pad in 0usize..12) {
        let x = latent_linalg::Tensor4::from_fn([1, 1, h, w], |[_, _, i, j]| (i * 10 + j) as f64).unwrap();
        let p = mirror_pad(&x, pad, pad, pad, pad).unwrap();
        prop_assert_eq!(p.shape(), [1, 1, h + 2 * pad, w + 2 * pad]);
        for i in 0..h + 2 * pad {
            for j in 0..w + 2 * pad {
                let src = (mirror_index(i as isize - pad as isize, h), mirror_index(j as isize - pad as isize, w));
                prop_assert_eq!(p.get([0, 0, i, j]).unwrap(), (src.0 * 10 + src.1) as f64);
            }
        }
        if h > 1 {
            prop_assert_eq!(mirror_index(-1, h), 1);
            prop_assert_eq!(mirror_index(h as isize, h), h - 2);
        }
    }

    #[test]
    fn size_errors_name_sizes_that_work(depth in 1usize..6, n in 1usize..300, valid in any::<bool>()) {
        let g = Geometry::new(depth, if valid { Padding::Valid } else { Padding::Same });
        match g.check_size("height", n) {
            Ok(o) => {
                prop_assert_eq!(Some(o), g.output_size(n));
                prop_assert_eq!(g.skip_crops(n).map(|c| c.len()), Some(depth - 1));
            }
            Err(UnetError::InputSize { valid: msg, .. }) => {
                let (lo, hi) = g.valid_sizes_near(n);
                prop_assert!(lo.is_some() || hi.is_some());
                for k in [lo, hi].into_iter().flatten() {
                    prop_assert!(g.output_size(k).is_some());
                    prop_assert!(msg.contains(&k.to_string()));
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}
