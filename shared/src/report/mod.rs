//! The daily report: outcome records merged, strictly oldest day first, into sorted CSV lists, a
//! summary and, once a day is complete, a manifest written after every file it lists.

pub mod build;
pub mod day;
pub mod rows;
pub mod sort;
pub mod stats;
pub mod stores;
