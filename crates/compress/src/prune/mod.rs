//! Structured pruning that really shrinks the model.
//!
//! 1. [`PruneGraph::new`] derives the channel-dependency graph from the resolved architecture
//!    ([`graph`], [`deps`]): which filters, BN entries and consumer input slices go together.
//!    [`DetectorGraph::new`] does the same for a detector on any [`PrunableBackbone`] ([`backbone`]).
//! 2. [`importance`] scores every prunable unit (L1, L2, BN γ, FPGM, first-order Taylor),
//!    aggregated over all tensors of its group.
//! 3. [`select`] turns scores and per-group ratios (uniform, global, or a FLOPs target) into a
//!    [`PrunePlan`], with kept counts rounded to a multiple of `round_to`.
//! 4. [`prune_model`] performs the surgery: a new, smaller model with its own resolved
//!    architecture, so its checkpoint reloads without any YAML ([`prune_detector`] for a
//!    [`PrunableBackbone`]).

pub mod backbone;
pub mod compensate;
pub mod deps;
pub mod eagleeye;
pub mod graph;
pub mod importance;
pub mod pipeline;
pub mod plan;
pub mod reanchor;
pub mod select;
pub mod sfp;
pub mod stats;
pub mod surgery;
pub mod taylor;

pub use backbone::PrunableBackbone;
pub use compensate::{Compensation, CompensationReport, compensate};
pub use deps::{ChannelDeps, key, under};
pub use eagleeye::{CandidateReport, EagleEyeConfig, EagleEyeOutcome, draw_candidates, eagleeye, spearman};
pub use graph::{ChannelGraph, Channels, Group, Groups, Role, TensorUse};
pub use importance::{Criterion, ScoreData, TaylorAccumulator, scores, unit_scores};
pub use pipeline::{
    Method, PruneConfig, PruneData, PruneOutcome, SensitivityReport, SensitivityRow, prune, sensitivity,
};
pub use plan::{DetectorGraph, PlanGraph, PruneGraph, PrunePlan};
pub use reanchor::{ReanchorReport, reanchor_bn};
pub use select::{FlopsTarget, Scope, kept_count, plan_for_flops, plan_from_ratios};
pub use sfp::SoftFilterPruning;
pub use stats::{ActivationStats, Moments};
pub use surgery::{mask_detector, mask_model, prune_detector, prune_model, prune_model_with};
