//! trainer (being written).
