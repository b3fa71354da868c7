//! Descriptors of atomic environments, one module each. Each takes a validated `Structure`,
//! builds its own neighbor list and works per central atom over that atom's neighbor slice.

pub mod bispectrum;
pub mod soap;
