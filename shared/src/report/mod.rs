//! The daily report: outcome records merged, strictly oldest day first, into sorted CSV lists (a
//! row per file with its state for the day, and a row per record), a page to look at
//! (`report.html`), a summary and, once a day is complete, a manifest written after every file
//! it lists.

pub mod build;
pub mod change;
pub mod day;
mod day_report;
pub mod files;
pub mod html;
pub mod late;
pub mod lease;
mod lists;
pub mod pauses;
pub mod ports;
pub mod rows;
pub mod sort;
pub mod stats;
pub mod stores;
pub mod watch;
