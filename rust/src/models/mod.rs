//! Prediction kernels of the models, and the per-structure rows of their fits. Each model
//! takes a configured descriptor and coefficients; fitting orchestration stays in Python.

pub mod kernel;
pub mod linear;
pub mod zbl;
