//! One error type for the tool: every message names the file, the field and what was expected,
//! so `scripts/build-image` can print it as it is and a person knows what to fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with one field of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted TOML key (`limits.memory_max`); empty when the whole file is at fault.
    pub field: String,
    pub message: String,
}

/// Everything wrong with a file (a board is checked whole, so one run lists every problem).
#[derive(Debug)]
pub struct Error {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl Error {
    pub fn new(file: &Path, field: &str, message: impl Into<String>) -> Error {
        Error { file: file.to_path_buf(), problems: vec![Problem { field: field.into(), message: message.into() }] }
    }

    /// An I/O failure on `file` (reading, writing, renaming, running git).
    pub fn io(file: &Path, what: &str, e: std::io::Error) -> Error {
        Error::new(file, "", format!("cannot {what}: {e}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.field.as_str() {
                "" => write!(f, "{}: {}", self.file.display(), p.message)?,
                field => write!(f, "{}: {field}: {}", self.file.display(), p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
