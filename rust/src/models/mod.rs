pub mod zbl;
