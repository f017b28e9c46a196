//! Reading OTLP attributes without copying them: lookups by key over the attribute list,
//! and number parsing that tells "absent" from "present but unreadable".

use std::cell::{Cell, RefCell};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

pub fn get_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(attrs, key) {
        Some(Value::StringValue(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The string form of a body, if it is a string.
pub fn body_str(body: Option<&AnyValue>) -> Option<&str> {
    match body.and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Values present but unreadable (a number sent as `"n/a"`), counted per attribute for
/// the partial-success reply. Nothing is allocated until a value is refused.
#[derive(Default)]
pub struct Unreadable {
    total: Cell<u64>,
    by_key: RefCell<Vec<(String, u64)>>,
}

impl Unreadable {
    pub fn note(&self, key: &str) {
        self.total.set(self.total.get() + 1);
        let mut by_key = self.by_key.borrow_mut();
        match by_key.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n += 1,
            None => by_key.push((key.to_string(), 1)),
        }
    }

    pub fn total(&self) -> u64 {
        self.total.get()
    }

    /// `(attribute, count)` in the order first refused.
    pub fn take(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.by_key.borrow_mut())
    }
}

/// One record's attributes with its resource's behind them, and a tally of values that
/// were present but could not be read (a number sent as a malformed string).
pub struct Reader<'a> {
    pub attrs: &'a [KeyValue],
    pub resource: &'a [KeyValue],
    pub rejected: &'a Unreadable,
}

impl<'a> Reader<'a> {
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        get(self.attrs, key)
    }

    /// A string attribute of the record, else of its resource.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        get_str(self.attrs, key).or_else(|| get_str(self.resource, key))
    }

    /// A record attribute as a number: ints, doubles and numeric strings (`"420"`,
    /// `"1200.0"`) are read; anything else present is counted as rejected and left out.
    pub fn num(&self, key: &str) -> Option<f64> {
        let v = self.value(key)?;
        let n = match v {
            Value::IntValue(i) => Some(*i as f64),
            Value::DoubleValue(d) if d.is_finite() => Some(*d),
            Value::StringValue(s) => s.trim().parse::<f64>().ok().filter(|d| d.is_finite()),
            _ => None,
        };
        if n.is_none() {
            self.rejected.note(key);
        }
        n
    }

    /// A record attribute as a whole number: an int, or a double or numeric string with
    /// no fraction (`"420"`, `"1200.0"`); anything else present is counted as rejected.
    pub fn int(&self, key: &str) -> Option<i64> {
        let v = self.value(key)?;
        let whole =
            |d: f64| (d.is_finite() && d.fract() == 0.0 && d.abs() < 9.0e15).then_some(d as i64);
        let n = match v {
            Value::IntValue(i) => Some(*i),
            Value::DoubleValue(d) => whole(*d),
            Value::StringValue(s) => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(whole))
            }
            _ => None,
        };
        if n.is_none() {
            self.rejected.note(key);
        }
        n
    }

    /// A field of an attribute holding a JSON object: sent as a JSON string, or as a
    /// `kvlistValue` (a collector parsed it). Strings and numbers are returned as text.
    pub fn field(&self, key: &str, field: &str) -> Option<String> {
        match self.value(key)? {
            Value::StringValue(s) => {
                let v: serde_json::Value = serde_json::from_str(s).ok()?;
                match v.get(field)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            }
            Value::KvlistValue(kv) => {
                let v = kv
                    .values
                    .iter()
                    .find(|e| e.key == field)?
                    .value
                    .as_ref()?
                    .value
                    .as_ref()?;
                match v {
                    Value::StringValue(s) => Some(s.clone()),
                    Value::IntValue(i) => Some(i.to_string()),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// A boolean attribute, also when sent as the string `"true"` / `"false"`.
    pub fn flag(&self, key: &str) -> Option<bool> {
        match self.value(key)? {
            Value::BoolValue(b) => Some(*b),
            Value::StringValue(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::StringValue(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// Appends an attribute value as JSON to `out` (used for the compact `attrs` column).
pub fn write_json_value(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::StringValue(s) => write_json_str(out, s),
        Value::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::IntValue(i) => {
            let _ = write!(out, "{i}");
        }
        Value::DoubleValue(d) if d.is_finite() => {
            let _ = write!(out, "{d}");
        }
        Value::DoubleValue(_) => out.push_str("null"),
        Value::ArrayValue(a) => {
            out.push('[');
            for (i, item) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match &item.value {
                    Some(v) => write_json_value(out, v),
                    None => out.push_str("null"),
                }
            }
            out.push(']');
        }
        Value::KvlistValue(kv) => {
            out.push('{');
            for (i, item) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, &item.key);
                out.push(':');
                match item.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(v) => write_json_value(out, v),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
        Value::BytesValue(b) => write_json_str(out, &crate::ids::encode_hex(b)),
        // An index into a profile's string table: meaningless outside the profile.
        Value::StringValueStrindex(_) => out.push_str("null"),
    }
}

pub fn write_json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds the compact JSON object of the attributes `keep` selects; `None` when none is kept.
pub fn select_json(attrs: &[KeyValue], keep: impl Fn(&str, &Value) -> bool) -> Option<String> {
    let mut out = String::new();
    for kv in attrs {
        let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
            continue;
        };
        if !keep(&kv.key, v) {
            continue;
        }
        out.push(if out.is_empty() { '{' } else { ',' });
        write_json_str(&mut out, &kv.key);
        out.push(':');
        write_json_value(&mut out, v);
    }
    if out.is_empty() {
        None
    } else {
        out.push('}');
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn numbers_as_strings_are_read_and_malformed_ones_counted() {
        let attrs = vec![
            kv("a", Value::StringValue("612".into())),
            kv("b", Value::IntValue(7)),
            kv("c", Value::StringValue("12x".into())),
            kv("d", Value::DoubleValue(0.5)),
        ];
        let rejected = Unreadable::default();
        let r = Reader {
            attrs: &attrs,
            resource: &[],
            rejected: &rejected,
        };
        assert_eq!(r.int("a"), Some(612));
        assert_eq!(r.num("b"), Some(7.0));
        assert_eq!(r.num("d"), Some(0.5));
        assert_eq!(r.int("missing"), None);
        assert_eq!(rejected.total(), 0);
        assert_eq!(r.int("c"), None);
        assert_eq!(r.int("d"), None, "a fraction is no token count");
        assert_eq!(rejected.total(), 2);
        assert_eq!(
            rejected.take(),
            vec![("c".to_string(), 1), ("d".to_string(), 1)]
        );
    }

    #[test]
    fn whole_numbers_arrive_in_every_encoding() {
        let attrs = vec![
            kv("int", Value::IntValue(420)),
            kv("double", Value::DoubleValue(1200.0)),
            kv("string", Value::StringValue("420".into())),
            kv("decimal", Value::StringValue(" 1200.0 ".into())),
            kv("garbage", Value::StringValue("n/a".into())),
        ];
        let rejected = Unreadable::default();
        let r = Reader {
            attrs: &attrs,
            resource: &[],
            rejected: &rejected,
        };
        assert_eq!(r.int("int"), Some(420));
        assert_eq!(r.int("double"), Some(1200));
        assert_eq!(r.int("string"), Some(420));
        assert_eq!(r.int("decimal"), Some(1200));
        assert_eq!(r.int("garbage"), None);
        assert_eq!(rejected.take(), vec![("garbage".to_string(), 1)]);
    }

    #[test]
    fn a_json_attribute_is_read_as_a_string_or_as_a_kvlist() {
        use opentelemetry_proto::tonic::common::v1::KeyValueList;
        let sha = "9c0832b26219b10b65f2a64ef32be97e2e28f8da";
        let as_string = vec![kv(
            "tool_parameters",
            Value::StringValue(format!(
                r#"{{"bash_command":"git commit","git_commit_id":"{sha}"}}"#
            )),
        )];
        let as_kvlist = vec![kv(
            "tool_parameters",
            Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("bash_command", Value::StringValue("git commit".into())),
                    kv("git_commit_id", Value::StringValue(sha.into())),
                ],
            }),
        )];
        let rejected = Unreadable::default();
        for attrs in [&as_string, &as_kvlist] {
            let r = Reader {
                attrs,
                resource: &[],
                rejected: &rejected,
            };
            assert_eq!(
                r.field("tool_parameters", "git_commit_id").as_deref(),
                Some(sha)
            );
            assert_eq!(r.field("tool_parameters", "missing"), None);
        }
    }

    #[test]
    fn selected_attributes_are_valid_json() {
        let attrs = vec![
            kv("model", Value::StringValue("a\"b\n".into())),
            kv("n", Value::IntValue(3)),
            kv("skip", Value::BoolValue(true)),
        ];
        let json = select_json(&attrs, |k, _| k != "skip").unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["model"], "a\"b\n");
        assert_eq!(parsed["n"], 3);
        assert!(parsed.get("skip").is_none());
    }
}
