//! The configurations' tests, one file per configuration.

mod control;
mod report;
mod sync;
