//! anonymous
