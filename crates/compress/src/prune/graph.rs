//! The channel-dependency graph: which output channels, BN entries and consumer input slices of a
//! model must be removed together.
//!
//! Every conv (and every block that makes new channels) creates a **space**: a run of `width`
//! channels. A feature map is described by [`Channels`], a concatenation of spaces (a plain conv
//! output is one space; a `Concat` or a GhostConv output lists several, with offsets computed from the
//! *original* widths). Operations that tie channels together (residual adds, depth-wise convs,
//! squeeze-excite gates, GhostConv's `[primary, cheap]` halves) are recorded by uniting single
//! channels in a union-find. A **unit** is a connected set of channels that must be kept or removed
//! together; a **group** is a set of spaces whose channels share units (e.g. a C3's `cv1` output and
//! every bottleneck of its residual chain). Pruning decides, per unit, keep or remove.
//!
//! Tensors register which of their dimensions index which channels ([`TensorUse`]); the surgery and
//! the importance criteria read them by the model's state-dict keys.

use std::collections::HashMap;

/// Index of a space (a run of channels created by one layer).
pub type SpaceId = usize;

/// The channels of a feature map: the concatenation of the listed spaces, in order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Channels(pub Vec<SpaceId>);

impl Channels {
    /// Concatenation of several feature maps' channels (`torch.cat(dim=1)`).
    pub fn concat<'a>(parts: impl IntoIterator<Item = &'a Channels>) -> Channels {
        Channels(parts.into_iter().flat_map(|c| c.0.iter().copied()).collect())
    }

    /// The same channels repeated `n` times (SPPF's `[x, pool(x), …]`, Focus's four pixel phases).
    pub fn repeat(&self, n: usize) -> Channels {
        Channels(std::iter::repeat_n(self.0.iter().copied(), n).flatten().collect())
    }
}

/// What a tensor dimension indexed by channels is, for the importance criteria.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Output filters of a conv (`weight` dim 0, depth-wise included).
    Filter,
    /// Input slices of a conv (`weight` dim 1): the channel's consumers.
    Input,
    /// A conv bias.
    Bias,
    /// BN γ.
    BnWeight,
    /// BN β.
    BnBias,
    /// BN running mean.
    BnMean,
    /// BN running variance.
    BnVar,
}

/// One tensor dimension that is indexed by channels.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorUse {
    /// State-dict key (`model.2.cv1.conv.weight`).
    pub key: String,
    /// The dimension (0 for filters and BN vectors, 1 for conv inputs).
    pub dim: usize,
    /// The channels along that dimension.
    pub channels: Channels,
    /// What the dimension is.
    pub role: Role,
    /// The layer the tensor belongs to.
    pub layer: usize,
}

/// A space: `width` channels created by `layer`, named after the tensor that creates them.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// Number of channels.
    pub width: usize,
    /// Index of the first channel in the graph's flat channel numbering.
    pub first: usize,
    /// Layer that created it.
    pub layer: usize,
    /// Human-readable origin (`model.2.cv1`).
    pub label: String,
}

/// Builds and holds the channel-dependency graph of one model.
#[derive(Clone, Debug, Default)]
pub struct ChannelGraph {
    spaces: Vec<Space>,
    parent: Vec<usize>,
    fixed: Vec<bool>,
    uses: Vec<TensorUse>,
    layer: usize,
    notes: Vec<String>,
}

impl ChannelGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the layer that subsequent spaces and tensors belong to.
    pub fn set_layer(&mut self, layer: usize) {
        self.layer = layer;
    }

    /// The current layer.
    pub fn layer(&self) -> usize {
        self.layer
    }

    /// Creates a new space of `width` channels and returns it as a feature map.
    pub fn new_space(&mut self, width: usize, label: impl Into<String>) -> Channels {
        let first = self.parent.len();
        self.parent.extend(first..first + width);
        self.fixed.extend(std::iter::repeat_n(false, width));
        self.spaces.push(Space { width, first, layer: self.layer, label: label.into() });
        Channels(vec![self.spaces.len() - 1])
    }

    /// All spaces, in creation order.
    pub fn spaces(&self) -> &[Space] {
        &self.spaces
    }

    /// All registered tensor uses.
    pub fn uses(&self) -> &[TensorUse] {
        &self.uses
    }

    /// Notes on couplings that were resolved conservatively (channels fixed), for reports.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Number of channels of a feature map.
    pub fn width(&self, c: &Channels) -> usize {
        c.0.iter().map(|&s| self.spaces[s].width).sum()
    }

    /// Flat channel indices of a feature map, position by position.
    pub fn flat(&self, c: &Channels) -> Vec<usize> {
        c.0.iter().flat_map(|&s| self.spaces[s].first..self.spaces[s].first + self.spaces[s].width).collect()
    }

    /// Registers that dimension `dim` of tensor `key` is indexed by `channels`.
    pub fn add_use(&mut self, key: impl Into<String>, dim: usize, channels: &Channels, role: Role) {
        self.uses.push(TensorUse { key: key.into(), dim, channels: channels.clone(), role, layer: self.layer });
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn find_const(&self, mut x: usize) -> usize {
        while self.parent[x] != x {
            x = self.parent[x];
        }
        x
    }

    /// Ties two feature maps channel by channel (a residual add, a gate, or two tensors a block
    /// requires to have the same width). Maps of different widths cannot be tied: both are fixed
    /// and a note is recorded.
    pub fn tie(&mut self, a: &Channels, b: &Channels, why: &str) {
        let (fa, fb) = (self.flat(a), self.flat(b));
        if fa.len() != fb.len() {
            self.notes.push(format!(
                "layer {}: {why}: widths {} and {} differ; both kept whole",
                self.layer,
                fa.len(),
                fb.len()
            ));
            self.fix(a);
            self.fix(b);
            return;
        }
        for (x, y) in fa.into_iter().zip(fb) {
            let (rx, ry) = (self.find(x), self.find(y));
            if rx != ry {
                self.parent[rx] = ry;
                let f = self.fixed[rx] || self.fixed[ry];
                self.fixed[ry] = f;
            }
        }
    }

    /// Marks every channel of a feature map as never pruned.
    pub fn fix(&mut self, c: &Channels) {
        for x in self.flat(c) {
            let r = self.find(x);
            self.fixed[r] = true;
        }
    }

    /// Records a note and fixes the channels (a coupling the block's config cannot express).
    pub fn fix_because(&mut self, c: &Channels, why: impl Into<String>) {
        self.notes.push(format!("layer {}: {}", self.layer, why.into()));
        self.fix(c);
    }

    /// Fixes every space created by the given layers.
    pub fn fix_layers(&mut self, layers: &[usize]) {
        let ids: Vec<SpaceId> = (0..self.spaces.len()).filter(|&s| layers.contains(&self.spaces[s].layer)).collect();
        for s in ids {
            self.fix(&Channels(vec![s]));
        }
    }

    /// Collapses the union-find into units and groups.
    pub fn finish(&self) -> Groups {
        let n = self.parent.len();
        let root: Vec<usize> = (0..n).map(|x| self.find_const(x)).collect();
        // Units numbered in order of first appearance.
        let mut unit_of_root: HashMap<usize, usize> = HashMap::new();
        let mut unit = vec![0; n];
        let mut unit_fixed = Vec::new();
        for x in 0..n {
            let next = unit_of_root.len();
            let u = *unit_of_root.entry(root[x]).or_insert(next);
            if u == unit_fixed.len() {
                unit_fixed.push(self.fixed[root[x]]);
            }
            unit[x] = u;
        }
        // Groups: spaces linked through shared units.
        let ns = self.spaces.len();
        let mut gp: Vec<usize> = (0..ns).collect();
        fn gfind(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        let mut owner: HashMap<usize, SpaceId> = HashMap::new();
        for (s, sp) in self.spaces.iter().enumerate() {
            for &u in &unit[sp.first..sp.first + sp.width] {
                if let Some(&o) = owner.get(&u) {
                    let (a, b) = (gfind(&mut gp, s), gfind(&mut gp, o));
                    if a != b {
                        gp[a] = b;
                    }
                } else {
                    owner.insert(u, s);
                }
            }
        }
        let mut group_of_root: HashMap<usize, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut space_group = vec![0; ns];
        for (s, sg) in space_group.iter_mut().enumerate() {
            let r = gfind(&mut gp, s);
            let next = groups.len();
            let g = *group_of_root.entry(r).or_insert(next);
            if g == groups.len() {
                groups.push(Group {
                    id: g,
                    spaces: Vec::new(),
                    units: Vec::new(),
                    fixed: false,
                    label: self.spaces[s].label.clone(),
                    layer: self.spaces[s].layer,
                });
            }
            groups[g].spaces.push(s);
            *sg = g;
        }
        for g in &mut groups {
            let mut seen = std::collections::HashSet::new();
            for &s in &g.spaces {
                let sp = &self.spaces[s];
                for &u in &unit[sp.first..sp.first + sp.width] {
                    if seen.insert(u) {
                        g.units.push(u);
                    }
                }
            }
            g.fixed = g.units.iter().all(|&u| unit_fixed[u]);
        }
        Groups { unit, unit_fixed, groups, space_group }
    }
}

/// One group of coupled spaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Index in [`Groups::groups`].
    pub id: usize,
    /// Member spaces.
    pub spaces: Vec<SpaceId>,
    /// Its units (keep/remove decisions), in order of first appearance.
    pub units: Vec<usize>,
    /// Whether nothing in it may be pruned.
    pub fixed: bool,
    /// Name of its first space (`model.2.cv1`).
    pub label: String,
    /// Layer of its first space.
    pub layer: usize,
}

/// The units and groups of a finished [`ChannelGraph`].
#[derive(Clone, Debug)]
pub struct Groups {
    /// Unit of every flat channel.
    pub unit: Vec<usize>,
    /// Whether each unit is fixed.
    pub unit_fixed: Vec<bool>,
    /// The groups.
    pub groups: Vec<Group>,
    /// Group of every space.
    pub space_group: Vec<usize>,
}

impl Groups {
    /// Number of units.
    pub fn num_units(&self) -> usize {
        self.unit_fixed.len()
    }

    /// Groups that may be pruned (some unit not fixed).
    pub fn prunable(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(|g| !g.fixed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_make_units_and_groups() {
        let mut g = ChannelGraph::new();
        let a = g.new_space(4, "a");
        let b = g.new_space(2, "b");
        let c = g.new_space(2, "c");
        // GhostConv-like: a is tied to [b, b] position by position.
        g.tie(&a, &b.repeat(2), "ghost residual");
        let gr = g.finish();
        assert_eq!(gr.num_units(), 4, "b's 2 units, c's 2 units");
        assert_eq!(gr.unit[0], gr.unit[2], "a[0] and a[2] both follow b[0]");
        assert_eq!(gr.unit[1], gr.unit[3]);
        assert_eq!(gr.groups.len(), 2);
        assert_eq!(gr.groups[0].spaces, vec![0, 1]);
        assert_eq!(gr.groups[0].units.len(), 2);
        assert_eq!(gr.groups[1].spaces, vec![2]);
        let _ = c;
    }

    #[test]
    fn mismatched_tie_fixes_both_and_fix_propagates() {
        let mut g = ChannelGraph::new();
        let a = g.new_space(3, "a");
        let b = g.new_space(2, "b");
        let c = g.new_space(2, "c");
        g.tie(&a, &b, "add");
        assert_eq!(g.notes().len(), 1);
        g.tie(&c, &b, "add");
        let gr = g.finish();
        assert!(gr.groups.iter().all(|gr| gr.fixed), "c is tied to a fixed space");
        assert_eq!(g.width(&Channels::concat([&a, &b])), 5);
        assert_eq!(g.flat(&Channels::concat([&b, &a])), vec![3, 4, 0, 1, 2]);
    }
}
