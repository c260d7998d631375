//! Interactive sessions (being written).
