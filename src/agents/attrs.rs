//! Reading OTLP attributes without copying them: lookups by key over the attribute list,
//! and number parsing that tells "absent" from "present but unreadable".

use std::cell::Cell;

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

/// One record's attributes with its resource's behind them, and a tally of values that
/// were present but could not be read (a number sent as a malformed string).
pub struct Reader<'a> {
    pub attrs: &'a [KeyValue],
    pub resource: &'a [KeyValue],
    pub rejected: &'a Cell<u64>,
}

impl<'a> Reader<'a> {
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        get(self.attrs, key)
    }

    /// A string attribute of the record, else of its resource.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        get_str(self.attrs, key).or_else(|| get_str(self.resource, key))
    }

    /// A record attribute as a number: ints, doubles and numeric strings are read;
    /// anything else present is counted as rejected and left out.
    pub fn num(&self, key: &str) -> Option<f64> {
        let v = self.value(key)?;
        let n = match v {
            Value::IntValue(i) => Some(*i as f64),
            Value::DoubleValue(d) if d.is_finite() => Some(*d),
            Value::StringValue(s) => s.trim().parse::<f64>().ok().filter(|d| d.is_finite()),
            _ => None,
        };
        if n.is_none() {
            self.rejected.set(self.rejected.get() + 1);
        }
        n
    }

    /// A record attribute as a whole number (see [`Reader::num`]).
    pub fn int(&self, key: &str) -> Option<i64> {
        let v = self.value(key)?;
        let n = match v {
            Value::IntValue(i) => Some(*i),
            Value::DoubleValue(d) if d.fract() == 0.0 && d.is_finite() => Some(*d as i64),
            Value::StringValue(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if n.is_none() {
            self.rejected.set(self.rejected.get() + 1);
        }
        n
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
        let rejected = Cell::new(0);
        let r = Reader {
            attrs: &attrs,
            resource: &[],
            rejected: &rejected,
        };
        assert_eq!(r.int("a"), Some(612));
        assert_eq!(r.num("b"), Some(7.0));
        assert_eq!(r.num("d"), Some(0.5));
        assert_eq!(r.int("missing"), None);
        assert_eq!(rejected.get(), 0);
        assert_eq!(r.int("c"), None);
        assert_eq!(rejected.get(), 1);
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
