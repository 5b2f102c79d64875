//! A typed walk over a parsed JSON document that collects *every* problem instead of stopping
//! at the first one, so `panelcam check` can list them all. Each problem names the file, the
//! field (dotted path) and what was expected.

use std::cell::RefCell;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::duration::parse_duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One thing wrong (or suspicious) in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// Dotted field path such as `ffmpeg.quality`; empty for whole-file problems.
    pub field: String,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects problems for one file.
pub struct Ctx {
    file: PathBuf,
    problems: RefCell<Vec<Problem>>,
}

impl Ctx {
    pub fn new(file: &Path) -> Ctx {
        Ctx { file: file.to_path_buf(), problems: RefCell::new(Vec::new()) }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) {
        self.push(field, message.into(), Severity::Error);
    }

    pub fn warn(&self, field: &str, message: impl Into<String>) {
        self.push(field, message.into(), Severity::Warning);
    }

    fn push(&self, field: &str, message: String, severity: Severity) {
        let file = self.file.clone();
        self.problems.borrow_mut().push(Problem { file, field: field.to_string(), message, severity });
    }

    pub fn into_problems(self) -> Vec<Problem> {
        self.problems.into_inner()
    }

    /// Parses JSON text, reporting a syntax error with its line and column.
    pub fn parse_json(&self, text: &str) -> Option<Value> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error("", format!("not valid JSON: {e}"));
                None
            }
        }
    }

    /// The top-level object of a document.
    pub fn root<'a>(&'a self, value: &'a Value) -> Section<'a> {
        match value {
            Value::Object(map) => Section::new(self, String::new(), Some(map)),
            other => {
                self.error("", format!("expected a JSON object at the top level, found {}", kind(other)));
                Section::new(self, String::new(), None)
            }
        }
    }
}

/// One JSON object being read. Keys that are read are remembered; `finish` warns about the
/// rest (probably typos) instead of failing, so an old or newer config still starts.
pub struct Section<'a> {
    ctx: &'a Ctx,
    prefix: String,
    map: Option<&'a Map<String, Value>>,
    known: RefCell<Vec<&'static str>>,
}

impl<'a> Section<'a> {
    fn new(ctx: &'a Ctx, prefix: String, map: Option<&'a Map<String, Value>>) -> Self {
        Section { ctx, prefix, map, known: RefCell::new(Vec::new()) }
    }

    pub fn ctx(&self) -> &'a Ctx {
        self.ctx
    }

    pub fn field(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_string() } else { format!("{}.{key}", self.prefix) }
    }

    /// The value under `key`, `None` when absent or `null` (JSON `null` means "use the default"
    /// throughout the spec).
    pub fn raw(&self, key: &'static str) -> Option<&'a Value> {
        self.get(key)
    }

    fn get(&self, key: &'static str) -> Option<&'a Value> {
        self.known.borrow_mut().push(key);
        match self.map?.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn has(&self, key: &'static str) -> bool {
        self.get(key).is_some()
    }

    pub fn expected(&self, key: &str, what: &str, found: &Value) {
        // Never echo what was written in a secret's place, even when it is wrong.
        let found = if SECRET_KEYS.contains(&key) { kind(found).to_string() } else { describe(found) };
        self.ctx.error(&self.field(key), format!("expected {what}, found {found}"));
    }

    pub fn opt_bool(&self, key: &'static str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.expected(key, "true or false", other);
                None
            }
        }
    }

    pub fn bool(&self, key: &'static str, default: bool) -> bool {
        self.opt_bool(key).unwrap_or(default)
    }

    pub fn opt_string(&self, key: &'static str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.expected(key, "a string", other);
                None
            }
        }
    }

    pub fn string(&self, key: &'static str, default: &str) -> String {
        self.opt_string(key).unwrap_or_else(|| default.to_string())
    }

    /// A string that must be present and non-empty.
    pub fn required_string(&self, key: &'static str, what: &str) -> Option<String> {
        let present = self.map.is_some_and(|m| !matches!(m.get(key), None | Some(Value::Null)));
        match self.opt_string(key) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.ctx.error(&self.field(key), format!("must not be empty; expected {what}"));
                None
            }
            None => {
                if !present {
                    self.ctx.error(&self.field(key), format!("is required; expected {what}"));
                }
                None
            }
        }
    }

    /// One of a fixed set of strings.
    pub fn opt_choice(&self, key: &'static str, choices: &[&str]) -> Option<String> {
        let s = self.opt_string(key)?;
        if choices.contains(&s.as_str()) {
            Some(s)
        } else {
            let list = choices.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
            self.ctx.error(&self.field(key), format!("expected one of {list}, found \"{s}\""));
            None
        }
    }

    pub fn choice(&self, key: &'static str, choices: &[&str], default: &str) -> String {
        self.opt_choice(key, choices).unwrap_or_else(|| default.to_string())
    }

    pub fn opt_u64(&self, key: &'static str, range: RangeInclusive<u64>) -> Option<u64> {
        let v = self.get(key)?;
        match v.as_u64() {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                let what = format!("a whole number from {} to {}", range.start(), range.end());
                self.expected(key, &what, v);
                None
            }
        }
    }

    pub fn u64(&self, key: &'static str, range: RangeInclusive<u64>, default: u64) -> u64 {
        self.opt_u64(key, range).unwrap_or(default)
    }

    pub fn opt_f64(&self, key: &'static str, range: RangeInclusive<f64>) -> Option<f64> {
        let v = self.get(key)?;
        match v.as_f64() {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                let what = format!("a number from {} to {}", range.start(), range.end());
                self.expected(key, &what, v);
                None
            }
        }
    }

    pub fn f64(&self, key: &'static str, range: RangeInclusive<f64>, default: f64) -> f64 {
        self.opt_f64(key, range).unwrap_or(default)
    }

    /// A duration written as `"30s"`, `"10m"`, `"5h"` or `"7d"`.
    pub fn opt_duration(&self, key: &'static str) -> Option<Duration> {
        let v = self.get(key)?;
        let parsed = match v {
            Value::String(s) => parse_duration(s).map_err(|e| format!("{e}, found \"{s}\"")),
            other => Err(format!("expected a duration such as \"10m\", \"5h\" or \"7d\", found {}", describe(other))),
        };
        parsed.map_err(|e| self.ctx.error(&self.field(key), e)).ok()
    }

    pub fn string_list(&self, key: &'static str) -> Vec<String> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.expected(key, "an array of strings", v);
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                // Numbers are common in FFmpeg argument lists ("-probesize", 100000).
                Value::Number(n) => out.push(n.to_string()),
                other => {
                    let field = format!("{}[{i}]", self.field(key));
                    self.ctx.error(&field, format!("expected a string, found {}", describe(other)));
                }
            }
        }
        out
    }

    /// A nested object; absent or `null` gives an empty section (all defaults).
    pub fn section(&self, key: &'static str) -> Section<'a> {
        let prefix = self.field(key);
        match self.get(key) {
            None => Section::new(self.ctx, prefix, None),
            Some(Value::Object(map)) => Section::new(self.ctx, prefix, Some(map)),
            Some(other) => {
                self.ctx.error(&prefix, format!("expected an object, found {}", describe(other)));
                Section::new(self.ctx, prefix, None)
            }
        }
    }

    /// True when the key is present with a non-null value (read or not).
    pub fn present(&self, key: &str) -> bool {
        self.map.is_some_and(|m| !matches!(m.get(key), None | Some(Value::Null)))
    }

    /// Warns about keys nobody read: typos must not go unnoticed, but must not stop a plant.
    pub fn finish(&self) {
        let Some(map) = self.map else { return };
        let known = self.known.borrow();
        for key in map.keys() {
            if known.iter().any(|k| k == key) {
                continue;
            }
            let mut message = "unknown field, ignored".to_string();
            if let Some(close) = known.iter().find(|k| edit_distance(k, key) <= 2) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            self.ctx.warn(&self.field(key), message);
        }
    }
}

/// Fields whose values must not appear in error messages.
const SECRET_KEYS: &[&str] = &["token", "password", "admin_token", "metrics_token", "database_url", "url"];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short description of a wrong value for an error message.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() <= 40 => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => kind(other).to_string(),
    }
}

/// Levenshtein distance, for "did you mean" hints on short field names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, f: impl FnOnce(&Section)) -> Vec<Problem> {
        let ctx = Ctx::new(Path::new("x.json"));
        let v = ctx.parse_json(text).unwrap();
        {
            let root = ctx.root(&v);
            f(&root);
            root.finish();
        }
        ctx.into_problems()
    }

    #[test]
    fn wrong_types_name_the_field_and_expectation() {
        let problems = read(r#"{"port": "abc", "sub": {"q": 500}}"#, |s| {
            assert_eq!(s.u64("port", 1..=65535, 8080), 8080);
            let sub = s.section("sub");
            assert_eq!(sub.opt_u64("q", 1..=100), None);
            sub.finish();
        });
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "error: x.json: field `port`: expected a whole number from 1 to 65535, found \"abc\"",
                "error: x.json: field `sub.q`: expected a whole number from 1 to 100, found 500",
            ]
        );
    }

    #[test]
    fn unknown_fields_warn_with_a_hint() {
        let problems = read(r#"{"prot": 1}"#, |s| {
            s.opt_u64("port", 1..=10);
        });
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].severity, Severity::Warning);
        assert!(problems[0].message.contains("did you mean `port`"), "{}", problems[0]);
    }

    #[test]
    fn null_means_default_and_required_fields_are_reported() {
        let problems = read(r#"{"a": null, "b": ""}"#, |s| {
            assert!(s.bool("a", true));
            assert_eq!(s.required_string("b", "a URL"), None);
            assert_eq!(s.required_string("c", "a URL"), None);
        });
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("must not be empty"));
        assert!(problems[1].message.contains("is required"));
    }

    #[test]
    fn secret_values_are_not_echoed() {
        let problems = read(r#"{"token": 98765432}"#, |s| {
            s.opt_string("token");
        });
        assert!(!problems[0].message.contains("98765432"), "{}", problems[0]);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let ctx = Ctx::new(Path::new("c.json"));
        assert!(ctx.parse_json("{\n \"a\": ,\n}").is_none());
        let p = &ctx.into_problems()[0];
        assert!(p.message.contains("line 2"), "{p}");
    }

    #[test]
    fn lists_accept_numbers_and_reject_objects() {
        let problems = read(r#"{"args": ["-probesize", 32, {}]}"#, |s| {
            assert_eq!(s.string_list("args"), vec!["-probesize", "32"]);
        });
        assert_eq!(problems[0].field, "args[2]");
    }
}
