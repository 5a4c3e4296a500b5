//! Integration tests: the emulator over real HTTP on 127.0.0.1, signed with the shared V4 signer.

mod auth;
mod faults;
mod listing;
mod multipart;
mod objects;
mod support;
mod uploads;
