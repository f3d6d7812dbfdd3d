//! Target assignment of YOLOv5, on the host: ultralytics/yolov5 v7.0 `utils/loss.py`,
//! `ComputeLoss.build_targets`.
//!
//! Input: targets `[nt]` rows `(image, class, xc, yc, w, h)` with the box normalised to 0..1;
//! per level the anchors `[na]` of `(w, h)` in grid units and the grid `(ny, nx)`.
//!
//! Per level, in f32 exactly as the reference computes it:
//! 1. scale the boxes to grid units (`x·nx, y·ny, w·nx, h·ny`);
//! 2. keep the (anchor, target) pairs with `max(r, 1/r) < anchor_t` for both `r = w/anchor_w` and
//!    `r = h/anchor_h`, ordered anchor-major (all targets of anchor 0, then anchor 1, …);
//! 3. besides the cell holding the centre, assign each kept pair to the neighbouring cells whose
//!    centre is nearer than `g = 0.5`: left if `gx mod 1 < 0.5` and `gx > 1`, up if
//!    `gy mod 1 < 0.5` and `gy > 1`, right if `(nx − gx) mod 1 < 0.5` and `nx − gx > 1`, down
//!    likewise. The output lists all centre matches first, then all left, up, right and down
//!    matches (ultralytics' `t.repeat((5, 1, 1))[j]` order);
//! 4. cell `(gi, gj) = trunc(gxy − offset)`, clamped to `[0, nx − 1] × [0, ny − 1]`;
//!    `tbox = (gx − gi, gy − gj, gw, gh)` with the clamped cell (the reference clamps in place
//!    before it subtracts).

/// Targets of one pyramid level, one entry per (target, anchor, cell) match, in ultralytics' order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelTargets {
    /// Class of each match.
    pub tcls: Vec<usize>,
    /// Box of each match in grid units: `(gx − gi, gy − gj, gw, gh)`.
    pub tbox: Vec<[f32; 4]>,
    /// `(b, a, gj, gi)`: image in the batch, anchor, grid row, grid column.
    pub indices: Vec<[usize; 4]>,
    /// The matched anchor `(w, h)` in grid units.
    pub anchors: Vec<[f32; 2]>,
}

impl LevelTargets {
    /// Number of matches.
    pub fn len(&self) -> usize {
        self.tcls.len()
    }

    /// Whether the level has no match.
    pub fn is_empty(&self) -> bool {
        self.tcls.is_empty()
    }
}

/// Neighbour-cell offset `g` of ultralytics (`0.5`: a cell's half width).
const G: f32 = 0.5;

/// Offsets subtracted from the grid centre for the centre cell, then left, up, right, down.
const OFFSETS: [[f32; 2]; 5] = [[0.0, 0.0], [G, 0.0], [0.0, G], [-G, 0.0], [0.0, -G]];

/// Builds the per-level targets (see the module docs).
///
/// `targets` rows are `(image index, class, xc, yc, w, h)` normalised; `anchors[level]` are in grid
/// units; `grids[level] = (ny, nx)`; `anchor_t` is the hyp's anchor-multiple threshold (4.0).
///
/// # Panics
/// If `anchors` and `grids` have different lengths.
pub fn build_targets(
    targets: &[[f32; 6]],
    anchors: &[Vec<[f32; 2]>],
    grids: &[(usize, usize)],
    anchor_t: f32,
) -> Vec<LevelTargets> {
    assert_eq!(anchors.len(), grids.len(), "build_targets: one anchor set per grid");
    anchors.iter().zip(grids).map(|(anc, &(ny, nx))| build_level(targets, anc, ny, nx, anchor_t)).collect()
}

fn build_level(targets: &[[f32; 6]], anchors: &[[f32; 2]], ny: usize, nx: usize, anchor_t: f32) -> LevelTargets {
    let (gain_x, gain_y) = (nx as f32, ny as f32);
    // 1–2. Scale and match, anchor-major: (image, class, gx, gy, gw, gh, anchor).
    let mut kept: Vec<([f32; 6], usize)> = Vec::new();
    for (a, anc) in anchors.iter().enumerate() {
        for t in targets {
            let row = [t[0], t[1], t[2] * gain_x, t[3] * gain_y, t[4] * gain_x, t[5] * gain_y];
            let rw = row[4] / anc[0];
            let rh = row[5] / anc[1];
            let worst = rw.max(1.0 / rw).max(rh.max(1.0 / rh));
            if worst < anchor_t {
                kept.push((row, a));
            }
        }
    }
    // 3. Which of the five offsets apply to each kept pair.
    let near = |v: f32| v % 1.0 < G && v > 1.0;
    let flags: Vec<[bool; 5]> = kept
        .iter()
        .map(|(row, _)| {
            let (gx, gy) = (row[2], row[3]);
            let (ix, iy) = (gain_x - gx, gain_y - gy);
            [true, near(gx), near(gy), near(ix), near(iy)]
        })
        .collect();
    // 4. Emit offset-major.
    let mut out = LevelTargets::default();
    for (o, off) in OFFSETS.iter().enumerate() {
        for ((row, a), f) in kept.iter().zip(&flags) {
            if !f[o] {
                continue;
            }
            let (gx, gy) = (row[2], row[3]);
            // `.long()` truncates toward zero; then the in-place clamp.
            let gi = ((gx - off[0]) as i64).clamp(0, nx as i64 - 1);
            let gj = ((gy - off[1]) as i64).clamp(0, ny as i64 - 1);
            out.tcls.push(row[1] as i64 as usize);
            out.tbox.push([gx - gi as f32, gy - gj as f32, row[4], row[5]]);
            out.indices.push([row[0] as i64 as usize, *a, gj as usize, gi as usize]);
            out.anchors.push(anchors[*a]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 4], b: [f32; 4]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn centre_and_two_neighbours() {
        // 4×4 grid; centre (1.2, 2.4): nearer the left and upper neighbours.
        let lv = &build_targets(&[[0.0, 3.0, 0.3, 0.6, 0.25, 0.25]], &[vec![[1.0, 1.0]]], &[(4, 4)], 4.0)[0];
        assert_eq!(lv.indices, vec![[0, 0, 2, 1], [0, 0, 2, 0], [0, 0, 1, 1]]);
        assert_eq!(lv.tcls, vec![3, 3, 3]);
        assert_eq!(lv.anchors, vec![[1.0, 1.0]; 3]);
        let want = [[0.2, 0.4, 1.0, 1.0], [1.2, 0.4, 1.0, 1.0], [0.2, 1.4, 1.0, 1.0]];
        for (g, w) in lv.tbox.iter().zip(want) {
            assert!(close(*g, w), "{g:?} vs {w:?}");
        }
    }

    #[test]
    fn right_and_down_neighbours_and_no_neighbour_at_the_border() {
        // 8×8 grid. Target 1 at (2.75, 6.6): the right (3.25 → 3) and lower (7.1 → 7) cells are
        // nearer. Target 2 at (0.7, 7.6): first column (gx < 1: no left cell, but frac > 0.5: right
        // cell 1) and last row (8 − 7.6 < 1: no lower cell).
        let t = [[1.0, 0.0, 2.75 / 8.0, 6.6 / 8.0, 0.25, 0.25], [0.0, 1.0, 0.7 / 8.0, 7.6 / 8.0, 0.25, 0.25]];
        let lv = &build_targets(&t, &[vec![[2.0, 2.0]]], &[(8, 8)], 4.0)[0];
        // Centres first, then left (none), up (none), right, down.
        assert_eq!(lv.indices, vec![[1, 0, 6, 2], [0, 0, 7, 0], [1, 0, 6, 3], [0, 0, 7, 1], [1, 0, 7, 2]]);
        assert_eq!(lv.tcls, vec![0, 1, 0, 1, 0]);
        assert!((lv.tbox[2][0] + 0.25).abs() < 1e-6, "right neighbour: gx − gi = −0.25, {:?}", lv.tbox[2]);
        assert!((lv.tbox[3][0] + 0.3).abs() < 1e-6, "right neighbour: gx − gi = −0.3, {:?}", lv.tbox[3]);
        assert!((lv.tbox[4][1] + 0.4).abs() < 1e-5, "down neighbour: gy − gj = −0.4, {:?}", lv.tbox[4]);
    }

    #[test]
    fn anchor_ratio_filter_and_anchor_major_order() {
        // Anchors 1×1 and 8×8 (grid units) on a 16×16 grid; target A 2×2 (ratio 2 to the small anchor,
        // 4 to the big one, and 4 is not < 4), target B 6×6 (ratio 6 vs the small anchor: only the
        // big one); centres at cell centres (x.5) so there are no neighbours.
        let t = [
            [0.0, 1.0, 4.5 / 16.0, 4.5 / 16.0, 2.0 / 16.0, 2.0 / 16.0],
            [1.0, 2.0, 9.5 / 16.0, 2.5 / 16.0, 0.375, 0.375],
        ];
        let lv = &build_targets(&t, &[vec![[1.0, 1.0], [8.0, 8.0]]], &[(16, 16)], 4.0)[0];
        assert_eq!(lv.indices, vec![[0, 0, 4, 4], [1, 1, 2, 9]]);
        assert_eq!(lv.anchors, vec![[1.0, 1.0], [8.0, 8.0]]);
        // A looser threshold admits A on the 8×8 anchor too, listed after all anchor-0 matches.
        let lv = &build_targets(&t, &[vec![[1.0, 1.0], [8.0, 8.0]]], &[(16, 16)], 4.5)[0];
        assert_eq!(lv.indices, vec![[0, 0, 4, 4], [0, 1, 4, 4], [1, 1, 2, 9]]);
    }

    #[test]
    fn edge_centre_is_clamped_and_tbox_uses_the_clamped_cell() {
        // x = 1.0 exactly: gx = nx, trunc → nx, clamped to nx − 1, so tbox x = 1.0.
        let lv = &build_targets(&[[0.0, 0.0, 1.0, 0.5, 0.1, 0.1]], &[vec![[0.5, 0.5]]], &[(10, 10)], 4.0)[0];
        assert_eq!(lv.indices[0], [0, 0, 5, 9]);
        assert!(close(lv.tbox[0], [1.0, 0.0, 1.0, 1.0]), "{:?}", lv.tbox[0]);
    }

    #[test]
    fn levels_are_independent_and_empty_targets_give_empty_levels() {
        let anchors = vec![vec![[1.0, 1.0]], vec![[1.0, 1.0]]];
        let lv = build_targets(&[], &anchors, &[(4, 4), (2, 2)], 4.0);
        assert_eq!(lv.len(), 2);
        assert!(lv.iter().all(LevelTargets::is_empty));
        // A 0.25-wide box is 1 cell at 4×4 (match) and 0.5 cell at 2×2 (match, ratio 2).
        let lv = build_targets(&[[0.0, 0.0, 0.5, 0.5, 0.25, 0.25]], &anchors, &[(4, 4), (2, 2)], 4.0);
        // Centre (2.0, 2.0): frac 0 < 0.5 with gx > 1 and nx − gx = 2 > 1, so all four neighbours
        // qualify; right and down truncate 2.5 back to the centre cell (ultralytics lists it again).
        assert_eq!(lv[0].indices, vec![[0, 0, 2, 2], [0, 0, 2, 1], [0, 0, 1, 2], [0, 0, 2, 2], [0, 0, 2, 2]]);
        // Centre (1.0, 1.0) on 2×2: gx is not > 1 and 2 − gx = 1 is not > 1 either.
        assert_eq!(lv[1].len(), 1);
    }
}
