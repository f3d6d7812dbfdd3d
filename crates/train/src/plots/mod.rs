//! plots (being written).
