//! Seeded k-means (Lloyd) on 2-D points, the stand-in for `scipy.cluster.vq.kmeans` that ultralytics
//! calls on whitened label sizes.
//!
//! What scipy does: `kmeans(obs, k, iter=30)` runs 30 independent Lloyd clusterings, each started from
//! `k` observations drawn at random without replacement, stops each one when the mean Euclidean
//! distance to the nearest centre drops by no more than `thresh = 1e-5`, discards centres that lose
//! all their points (so it can return fewer than `k`), and keeps the codebook with the lowest mean
//! distance.
//!
//! What this does: [`RESTARTS`] = 30 runs from one seeded RNG, the even ones seeded like scipy (`k`
//! distinct observations, uniformly), the odd ones by k-means++ (first centre uniform, the others drawn
//! with probability proportional to the squared distance to the nearest chosen centre); the same
//! Lloyd update and stopping rule (absolute decrease of the mean Euclidean distance ≤ [`THRESH`], at
//! most [`MAX_ITERS`] updates); the codebook with the lowest mean distance wins. Both seedings are
//! needed: k-means++ favours clusters with a large spread (big boxes, in pixels), so on label sets
//! with many small, close size clusters it tends to merge them, while uniform seeding follows the
//! label counts. A centre left without points is moved onto the point farthest from its centre
//! rather than dropped, so the result always has `k` centres; when there are fewer than `k` distinct
//! points the function returns `None` (scipy's "fewer points than requested" case), and the caller
//! falls back to ultralytics' random init.

use rand::Rng;

/// Independent Lloyd runs, alternately seeded like scipy and by k-means++; the best (lowest mean
/// distance) is kept.
pub(super) const RESTARTS: usize = 30;
/// Upper bound on Lloyd updates per run (scipy has none; it relies on the threshold alone).
pub(super) const MAX_ITERS: usize = 300;
/// Stop when the mean distance decreases by no more than this (scipy's default `thresh`).
pub(super) const THRESH: f64 = 1e-5;

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    dx * dx + dy * dy
}

/// scipy's seeding: `k` observations drawn uniformly without replacement (they may coincide in value;
/// Lloyd's empty-cluster rule then separates them).
fn init_random(points: &[[f64; 2]], k: usize, rng: &mut impl Rng) -> Vec<[f64; 2]> {
    rand::seq::index::sample(rng, points.len(), k).into_iter().map(|i| points[i]).collect()
}

/// Whether `points` holds at least `k` distinct values.
fn has_distinct(points: &[[f64; 2]], k: usize) -> bool {
    let mut seen: Vec<[f64; 2]> = Vec::with_capacity(k);
    for p in points {
        if !seen.contains(p) {
            seen.push(*p);
            if seen.len() >= k {
                return true;
            }
        }
    }
    false
}

/// k-means++ seeding; `None` when the points have fewer than `k` distinct values.
fn init_plus_plus(points: &[[f64; 2]], k: usize, rng: &mut impl Rng) -> Option<Vec<[f64; 2]>> {
    let mut centres = Vec::with_capacity(k);
    centres.push(points[rng.random_range(0..points.len())]);
    let mut d2: Vec<f64> = points.iter().map(|&p| dist2(p, centres[0])).collect();
    while centres.len() < k {
        let total: f64 = d2.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let target = rng.random::<f64>() * total;
        let mut acc = 0.0;
        // Fall back to the last point with a positive weight if rounding runs past the end.
        let mut chosen = None;
        for (i, &d) in d2.iter().enumerate() {
            if d > 0.0 {
                chosen = Some(i);
                acc += d;
                if acc > target {
                    break;
                }
            }
        }
        let c = points[chosen?];
        centres.push(c);
        for (d, &p) in d2.iter_mut().zip(points) {
            *d = d.min(dist2(p, c));
        }
    }
    Some(centres)
}

/// Assigns every point to its nearest centre; returns the mean Euclidean distance.
fn assign(points: &[[f64; 2]], centres: &[[f64; 2]], labels: &mut [usize], d2: &mut [f64]) -> f64 {
    let mut sum = 0.0;
    for ((p, l), d) in points.iter().zip(labels.iter_mut()).zip(d2.iter_mut()) {
        let mut best = f64::INFINITY;
        let mut bi = 0;
        for (j, &c) in centres.iter().enumerate() {
            let e = dist2(*p, c);
            if e < best {
                best = e;
                bi = j;
            }
        }
        *l = bi;
        *d = best;
        sum += best.sqrt();
    }
    sum / points.len() as f64
}

/// One Lloyd run from the given centres; returns (centres, mean distance).
fn lloyd(points: &[[f64; 2]], mut centres: Vec<[f64; 2]>) -> (Vec<[f64; 2]>, f64) {
    let k = centres.len();
    let mut labels = vec![0usize; points.len()];
    let mut d2 = vec![0.0f64; points.len()];
    let mut dist = assign(points, &centres, &mut labels, &mut d2);
    for _ in 0..MAX_ITERS {
        let mut sums = vec![[0.0f64; 2]; k];
        let mut counts = vec![0usize; k];
        for (p, &l) in points.iter().zip(&labels) {
            sums[l][0] += p[0];
            sums[l][1] += p[1];
            counts[l] += 1;
        }
        for j in 0..k {
            if counts[j] > 0 {
                centres[j] = [sums[j][0] / counts[j] as f64, sums[j][1] / counts[j] as f64];
            } else {
                // Empty cluster: take over the point worst served by its current centre.
                let far = d2.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
                centres[j] = points[far];
                d2[far] = 0.0;
            }
        }
        let new_dist = assign(points, &centres, &mut labels, &mut d2);
        let improvement = dist - new_dist;
        dist = new_dist;
        if improvement <= THRESH {
            break;
        }
    }
    (centres, dist)
}

/// Best of [`RESTARTS`] seeded k-means++ / Lloyd runs with `k` centres; `None` when `points` has fewer
/// than `k` distinct values (or `k == 0`).
pub(super) fn kmeans(points: &[[f64; 2]], k: usize, rng: &mut impl Rng) -> Option<Vec<[f64; 2]>> {
    if k == 0 || points.len() < k {
        return None;
    }
    if !has_distinct(points, k) {
        return None;
    }
    let mut best: Option<(Vec<[f64; 2]>, f64)> = None;
    for run in 0..RESTARTS {
        let init = if run % 2 == 0 { init_random(points, k, rng) } else { init_plus_plus(points, k, rng)? };
        let (centres, dist) = lloyd(points, init);
        if best.as_ref().is_none_or(|b| dist < b.1) {
            best = Some((centres, dist));
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn separates_two_blobs() {
        let mut pts = Vec::new();
        for i in 0..50 {
            let e = (i % 5) as f64 * 0.01;
            pts.push([0.0 + e, 0.0 - e]);
            pts.push([10.0 - e, 5.0 + e]);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = kmeans(&pts, 2, &mut rng).unwrap();
        c.sort_by(|a, b| a[0].total_cmp(&b[0]));
        assert!(dist2(c[0], [0.02, -0.02]) < 1e-9, "{c:?}");
        assert!(dist2(c[1], [9.98, 5.02]) < 1e-9, "{c:?}");
    }

    #[test]
    fn too_few_distinct_points_is_none() {
        let pts = vec![[1.0, 1.0]; 10];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(kmeans(&pts, 2, &mut rng).is_none());
        assert!(kmeans(&pts, 1, &mut rng).is_some());
        assert!(kmeans(&pts[..1], 2, &mut rng).is_none());
    }

    #[test]
    fn empty_cluster_is_refilled() {
        // Three points, three centres, two of them start on top of each other's cluster.
        let pts = vec![[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]];
        let (c, d) = lloyd(&pts, vec![[0.0, 0.0], [0.1, 0.0], [100.0, 0.0]]);
        assert_eq!(c.len(), 3);
        assert!(d < 1e-12, "{c:?} {d}");
    }
}
