//! Segmentation metrics: foreground IoU, Dice and pixel accuracy, and instance-level precision,
//! recall and F1 at IoU ≥ 0.5 after connected components.

use crate::error::{Result, invalid, shape_err};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// 4-connected components of `mask` (`w × h`, row-major): labels `1..=count` in raster order of
/// first pixel, 0 outside the mask. Returns `(labels, count)`; the labels cover the complete rows
/// of `mask` (all `w·h` pixels when its length fits).
pub fn connected_components(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, usize) {
    // a mask shorter than w·h is treated as its complete rows
    let h = mask.len().checked_div(w).map_or(0, |rows| h.min(rows));
    let mut lab = vec![0u32; w * h];
    let mut next = 0u32;
    let mut queue = VecDeque::new();
    for s in 0..lab.len() {
        if !mask[s] || lab[s] != 0 {
            continue;
        }
        next += 1;
        lab[s] = next;
        queue.push_back(s);
        while let Some(i) = queue.pop_front() {
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if mask[j] && lab[j] == 0 {
                    lab[j] = next;
                    queue.push_back(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
    }
    (lab, next as usize)
}

/// Drop components smaller than `min_size` pixels and relabel the rest consecutively.
fn drop_small(labels: &mut [u32], count: usize, min_size: usize) -> usize {
    let mut size = vec![0usize; count + 1];
    for &l in labels.iter() {
        size[l as usize] += 1;
    }
    let mut map = vec![0u32; count + 1];
    let mut next = 0;
    for l in 1..=count {
        if size[l] >= min_size {
            next += 1;
            map[l] = next;
        }
    }
    for l in labels.iter_mut() {
        *l = map[*l as usize];
    }
    next as usize
}

/// Instances from a predicted class map (`w × h`).
///
/// With 2 classes the instances are the 4-connected components of class 1. With 3 classes
/// (background, interior, border) they are the components of the interior class, grown into the
/// adjacent predicted foreground (interior or border) by breadth-first search, so that touching
/// cells separated by a predicted border come out as separate instances of their full size;
/// foreground that no interior reaches (cells too thin to have an interior) forms instances of
/// its own. Components smaller than `min_size` pixels (before growing) are dropped.
///
/// # Errors
/// [`crate::UnetError::InvalidParameter`] for `n_classes ∉ {2, 3}`,
/// [`crate::UnetError::ShapeMismatch`] when `classes.len() != w·h`.
pub fn instances_from_classes(
    classes: &[u8],
    w: usize,
    h: usize,
    n_classes: usize,
    min_size: usize,
) -> Result<Vec<u32>> {
    if classes.len() != w * h {
        return Err(shape_err("instances_from_classes", format!("{w}x{h} = {} classes", w * h), classes.len()));
    }
    if !(2..=3).contains(&n_classes) {
        return Err(invalid("n_classes", n_classes, "instances are defined for 2 or 3 classes"));
    }
    let seeds: Vec<bool> = classes.iter().map(|&c| c == 1).collect();
    let (mut lab, count) = connected_components(&seeds, w, h);
    drop_small(&mut lab, count, min_size);
    if n_classes == 3 {
        let mut queue: VecDeque<usize> = (0..lab.len()).filter(|&i| lab[i] != 0).collect();
        while let Some(i) = queue.pop_front() {
            let (x, y) = (i % w, i / w);
            let l = lab[i];
            let mut visit = |j: usize| {
                if lab[j] == 0 && classes[j] != 0 {
                    lab[j] = l;
                    queue.push_back(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        // foreground that no interior reached (thin cells made of border pixels only)
        let rest: Vec<bool> = lab.iter().zip(classes).map(|(&l, &c)| l == 0 && c != 0).collect();
        let (mut extra, n_extra) = connected_components(&rest, w, h);
        drop_small(&mut extra, n_extra, min_size);
        let base = lab.iter().copied().max().unwrap_or(0);
        for (l, &e) in lab.iter_mut().zip(&extra) {
            if e != 0 {
                *l = base + e;
            }
        }
    }
    Ok(lab)
}

/// Pixel and instance metrics of a prediction against ground-truth instances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegMetrics {
    /// Foreground intersection over union `|P ∩ T| / |P ∪ T|` (1 when both are empty).
    pub iou: f64,
    /// Foreground Dice `2|P ∩ T| / (|P| + |T|)` (1 when both are empty).
    pub dice: f64,
    /// Share of pixels whose foreground/background label is right.
    pub pixel_accuracy: f64,
    /// Matched instances / predicted instances (1 when none are predicted).
    pub precision: f64,
    /// Matched instances / true instances (1 when there are none).
    pub recall: f64,
    /// Instance F1 `2·TP / (2·TP + FP + FN)` at IoU ≥ 0.5 (1 when both are empty).
    pub f1: f64,
    /// Matched pairs.
    pub true_positives: usize,
    /// Predicted instances without a match.
    pub false_positives: usize,
    /// True instances without a match.
    pub false_negatives: usize,
    /// Mean IoU of the matched pairs (0 without matches).
    pub matched_iou: f64,
}

/// Instance matches: one-to-one, greedily by decreasing IoU, counting pairs with IoU ≥ `threshold`.
/// Returns `(true positives, Σ IoU of the matches)`.
fn match_instances(pred: &[u32], truth: &[u32], threshold: f64) -> (usize, f64) {
    let mut area_p: HashMap<u32, usize> = HashMap::new();
    let mut area_t: HashMap<u32, usize> = HashMap::new();
    let mut inter: HashMap<(u32, u32), usize> = HashMap::new();
    for (&p, &t) in pred.iter().zip(truth) {
        if p != 0 {
            *area_p.entry(p).or_default() += 1;
        }
        if t != 0 {
            *area_t.entry(t).or_default() += 1;
        }
        if p != 0 && t != 0 {
            *inter.entry((p, t)).or_default() += 1;
        }
    }
    let mut pairs: Vec<(f64, u32, u32)> = inter
        .iter()
        .map(|(&(p, t), &i)| (i as f64 / (area_p[&p] + area_t[&t] - i) as f64, p, t))
        .filter(|&(iou, ..)| iou >= threshold)
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut used_p, mut used_t) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    let (mut tp, mut sum) = (0, 0.0);
    for (iou, p, t) in pairs {
        if used_p.contains(&p) || used_t.contains(&t) {
            continue;
        }
        used_p.insert(p);
        used_t.insert(t);
        tp += 1;
        sum += iou;
    }
    (tp, sum)
}

fn count_labels(l: &[u32]) -> usize {
    let mut v: Vec<u32> = l.iter().copied().filter(|&x| x != 0).collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Compare predicted instances (`0` background) with true instances, both `w·h` label maps.
/// The predicted foreground is `pred != 0` — pass the foreground mask through
/// [`evaluate_classes`] to count unassigned foreground pixels too.
///
/// # Errors
/// [`crate::UnetError::ShapeMismatch`] when the maps differ in length or are empty.
pub fn evaluate_instances(pred: &[u32], truth: &[u32]) -> Result<SegMetrics> {
    let fg: Vec<bool> = pred.iter().map(|&p| p != 0).collect();
    evaluate_impl(&fg, pred, truth)
}

/// Compare a predicted class map (`0` background, anything else foreground) with true instances:
/// pixel metrics on the foreground, instance metrics after [`instances_from_classes`].
///
/// # Errors
/// As [`instances_from_classes`]; [`crate::UnetError::ShapeMismatch`] when the maps differ in
/// length.
///
/// # Example
/// ```
/// use latent_unet::metrics::evaluate_classes;
/// // truth: two cells; prediction finds one of them exactly and half of the other
/// let truth = [1, 1, 0, 2, 2, 2, 2, 0];
/// let pred = [1, 1, 0, 1, 1, 0, 0, 0];
/// let m = evaluate_classes(&pred, &truth, 8, 1, 2, 0)?;
/// assert_eq!((m.true_positives, m.false_positives, m.false_negatives), (2, 0, 0));
/// assert!((m.iou - 4.0 / 6.0).abs() < 1e-12);
/// # Ok::<(), latent_unet::UnetError>(())
/// ```
pub fn evaluate_classes(
    pred: &[u8],
    truth: &[u32],
    w: usize,
    h: usize,
    n_classes: usize,
    min_size: usize,
) -> Result<SegMetrics> {
    if truth.len() != w * h {
        return Err(shape_err("evaluate_classes", format!("{w}x{h} = {} true labels", w * h), truth.len()));
    }
    let inst = instances_from_classes(pred, w, h, n_classes, min_size)?;
    let fg: Vec<bool> = pred.iter().map(|&c| c != 0).collect();
    evaluate_impl(&fg, &inst, truth)
}

fn evaluate_impl(fg: &[bool], pred: &[u32], truth: &[u32]) -> Result<SegMetrics> {
    if pred.len() != truth.len() || fg.len() != truth.len() {
        return Err(shape_err("evaluate", format!("{} predicted labels", truth.len()), pred.len()));
    }
    if truth.is_empty() {
        return Err(crate::UnetError::Empty { what: "label maps" });
    }
    let (mut inter, mut union, mut np, mut nt, mut agree) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for (&p, &t) in fg.iter().zip(truth) {
        let t = t != 0;
        inter += usize::from(p && t);
        union += usize::from(p || t);
        np += usize::from(p);
        nt += usize::from(t);
        agree += usize::from(p == t);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let (tp, sum_iou) = match_instances(pred, truth, 0.5);
    let (n_pred, n_true) = (count_labels(pred), count_labels(truth));
    let (fp, fneg) = (n_pred - tp, n_true - tp);
    Ok(SegMetrics {
        iou: ratio(inter, union),
        dice: ratio(2 * inter, np + nt),
        pixel_accuracy: agree as f64 / truth.len() as f64,
        precision: ratio(tp, n_pred),
        recall: ratio(tp, n_true),
        f1: ratio(2 * tp, 2 * tp + fp + fneg),
        true_positives: tp,
        false_positives: fp,
        false_negatives: fneg,
        matched_iou: if tp > 0 { sum_iou / tp as f64 } else { 0.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_four_connected() {
        // diagonal neighbours are separate components
        let m = [true, false, false, true];
        let (l, n) = connected_components(&m, 2, 2);
        assert_eq!((n, l), (2, vec![1, 0, 0, 2]));
        // a mask shorter than w·h: only its complete rows are labelled, nothing panics
        let (l, n) = connected_components(&[true, true, true], 2, 2);
        assert_eq!((n, l), (1, vec![1, 1]));
        assert_eq!(connected_components(&[true], 0, 5), (vec![], 0));
    }

    #[test]
    fn three_class_instances_split_touching_cells_and_grow_back() {
        // two 3-wide cells touching at columns 2|3 of a 6×3 strip; borders all around
        let w = 6;
        #[rustfmt::skip]
        let cls: Vec<u8> = vec![
            2, 2, 2, 2, 2, 2,
            2, 1, 2, 2, 1, 2,
            2, 2, 2, 2, 2, 2,
        ];
        let inst = instances_from_classes(&cls, w, 3, 3, 1).unwrap();
        assert_eq!(inst[..3], [1, 1, 1]);
        assert_eq!(inst[3..6], [2, 2, 2]);
        // 2 classes: one merged component
        let two: Vec<u8> = cls.iter().map(|&c| u8::from(c != 0)).collect();
        let inst2 = instances_from_classes(&two, w, 3, 2, 1).unwrap();
        assert!(inst2.iter().all(|&l| l == 1));
        // interiors below min_size are dropped; the foreground left over is one instance
        let inst3 = instances_from_classes(&cls, w, 3, 3, 2).unwrap();
        assert!(inst3.iter().all(|&l| l == 1));
        let inst4 = instances_from_classes(&cls, w, 3, 3, 100).unwrap();
        assert!(inst4.iter().all(|&l| l == 0));
    }

    #[test]
    fn perfect_and_empty_predictions() {
        let truth = [0, 1, 1, 0, 2, 2];
        let pred: Vec<u8> = truth.iter().map(|&t| u8::from(t != 0)).collect();
        let m = evaluate_classes(&pred, &truth, 6, 1, 2, 0).unwrap();
        assert_eq!((m.iou, m.dice, m.pixel_accuracy, m.f1), (1.0, 1.0, 1.0, 1.0));
        let m = evaluate_classes(&[0; 6], &truth, 6, 1, 2, 0).unwrap();
        assert_eq!((m.iou, m.f1, m.recall, m.false_negatives), (0.0, 0.0, 0.0, 2));
        assert!(evaluate_classes(&[0; 5], &truth, 6, 1, 2, 0).is_err());
    }
}
