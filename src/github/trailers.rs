//! Git commit trailers (not yet written).
