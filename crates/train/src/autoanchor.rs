//! AutoAnchor (being written).
