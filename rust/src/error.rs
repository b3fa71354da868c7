//! Errors of the core. Every way bad input can fail is a variant here, so the bindings
//! can turn it into a Python exception instead of a panic.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The input is malformed: NaN positions, a degenerate periodic cell, a bad cutoff...
    InvalidInput(String),
    /// The input is valid but the requested work would exhaust memory or time.
    TooLarge(String),
    /// An allocation the work needs does not fit in the memory available (Python MemoryError).
    OutOfMemory(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// The same error with "{what}: " before its message.
    pub fn context(self, what: &str) -> Self {
        match self {
            Error::InvalidInput(m) => Error::InvalidInput(format!("{what}: {m}")),
            Error::TooLarge(m) => Error::TooLarge(format!("{what}: {m}")),
            Error::OutOfMemory(m) => Error::OutOfMemory(format!("{what}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(m) | Error::TooLarge(m) | Error::OutOfMemory(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}
