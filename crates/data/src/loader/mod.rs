//! The batch loader: parallel decode + augmentation, bounded prefetch, deterministic by seed.
