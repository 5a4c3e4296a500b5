//! The one environment reader every configuration uses: [`Env`], a lookup function, hands out
//! [`Var`]s, each one variable with typed readers (required, optional, boolean, number in a
//! range, size in MiB, duration, one of a set of words, bucket name, key prefix) whose errors
//! name the variable. What counts as unset is said per variable: absent only (the default), or
//! also empty ([`Var::non_empty`]) or blank ([`Var::non_blank`]).

use super::{problem, ConfigError};
use std::time::Duration;

/// The environment as the configurations read it: a lookup function (the process environment,
/// or a map in tests).
#[derive(Clone, Copy)]
pub(super) struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    /// Reads through `get`.
    pub(super) fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { get }
    }

    /// One variable, as set (an empty value is a value until told otherwise).
    pub(super) fn var(&self, name: &'static str) -> Var {
        Var {
            name,
            value: (self.get)(name),
        }
    }
}

/// One variable read from the [`Env`]: its name, for the errors, and its value if set.
pub(super) struct Var {
    name: &'static str,
    value: Option<String>,
}

impl Var {
    /// An empty value counts as unset.
    pub(super) fn non_empty(mut self) -> Self {
        self.value = self.value.filter(|v| !v.is_empty());
        self
    }

    /// An empty or blank value counts as unset (a value kept is kept untrimmed).
    pub(super) fn non_blank(mut self) -> Self {
        self.value = self.value.filter(|v| !v.trim().is_empty());
        self
    }

    /// Surrounding white space is dropped.
    pub(super) fn trimmed(mut self) -> Self {
        self.value = self.value.map(|v| v.trim().to_owned());
        self
    }

    /// The value, if set.
    pub(super) fn value(self) -> Option<String> {
        self.value
    }

    /// The value, or `default` when unset.
    pub(super) fn or(self, default: &str) -> String {
        self.value.unwrap_or_else(|| default.to_owned())
    }

    /// A required, non-empty value; `what` says what is expected.
    pub(super) fn required(self, what: &str) -> Result<String, ConfigError> {
        let name = self.name;
        self.non_empty()
            .value
            .ok_or_else(|| problem(name, format!("is required ({what})")))
    }

    /// The value read by `read` (given the variable's name for its errors), if set.
    pub(super) fn parse<T>(
        self,
        read: impl FnOnce(&'static str, &str) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        let name = self.name;
        self.value.map(|v| read(name, &v)).transpose()
    }

    /// A boolean, if set.
    pub(super) fn bool(self) -> Result<Option<bool>, ConfigError> {
        self.parse(parse_bool)
    }

    /// A boolean that is off unless set.
    pub(super) fn flag(self) -> Result<bool, ConfigError> {
        self.bool().map(|b| b.unwrap_or(false))
    }

    /// A whole number from `min` to `max`, if set.
    pub(super) fn number(self, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        self.parse(|name, v| parse_range(name, v, min, max))
    }

    /// A whole number from `min` to `max`, or `default`.
    pub(super) fn number_or(self, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        self.number(min, max).map(|n| n.unwrap_or(default))
    }

    /// A size given in MiB (`default`, `min` and `max` too), in bytes.
    pub(super) fn mib(self, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        self.number_or(default, min, max).map(|n| n << 20)
    }

    /// A duration given in whole seconds from `min` to `max`, or `default` seconds.
    pub(super) fn seconds(self, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
        self.number_or(default, min, max).map(Duration::from_secs)
    }

    /// One of `options`' words (the value of `default` when unset), as its value.
    pub(super) fn choice<T: Copy>(
        self,
        default: &str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let name = self.name;
        let v = self.or(default);
        if let Some((_, t)) = options.iter().find(|(word, _)| *word == v) {
            return Ok(*t);
        }
        let words: Vec<&str> = options.iter().map(|(word, _)| *word).collect();
        let list = match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => words.join(""),
        };
        Err(problem(name, format!("{v:?} is not {list}")))
    }

    /// A bucket name ([`bucket`]), if set.
    pub(super) fn bucket(self) -> Result<Option<String>, ConfigError> {
        self.parse(bucket)
    }

    /// A required bucket name ([`bucket`]); `what` says which kind.
    pub(super) fn required_bucket(self, what: &str) -> Result<String, ConfigError> {
        let name = self.name;
        bucket(name, &self.required(what)?)
    }

    /// A key prefix ([`prefix`]), empty when unset.
    pub(super) fn prefix(self) -> Result<String, ConfigError> {
        self.parse(prefix).map(Option::unwrap_or_default)
    }
}

/// A boolean: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, in any case.
fn parse_bool(variable: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(problem(
            variable,
            format!("{v:?} is not a boolean (true or false)"),
        )),
    }
}

/// A whole number from `min` to `max`.
fn parse_range(variable: &'static str, v: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            problem(
                variable,
                format!("{v:?} is not a whole number from {min} to {max}"),
            )
        })
}

/// Checks a key prefix: kept as given (it may end in `/` or be part of a name), but never starting
/// with `/` or a backslash, which OSS keys cannot.
fn prefix(variable: &'static str, v: &str) -> Result<String, ConfigError> {
    if v.starts_with('/') || v.starts_with('\\') {
        return Err(problem(
            variable,
            format!("{v:?} must not start with '/' or '\\'"),
        ));
    }
    Ok(v.to_owned())
}

/// Reads the S3 bucket naming rules loosely: 3–63 of lower-case letters, digits, `.` and `-`.
fn bucket(variable: &'static str, v: &str) -> Result<String, ConfigError> {
    let ok = (3..=63).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(problem(
            variable,
            format!("{v:?} is not a bucket name (3-63 of a-z, 0-9, '.', '-')"),
        ))
    }
}
