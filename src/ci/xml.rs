//! The streaming XML reader the Cobertura, JaCoCo and JUnit parsers share: quick-xml
//! events, the line each event starts on, errors that name format and line, and the
//! refusals that keep a report from defining entities of its own.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;

use super::{Format, ParseError};

/// Counts the newlines in the bytes the XML reader has consumed, so that an event or an
/// error can be given a line number without holding the document.
struct LineCounter<R> {
    inner: R,
    newlines: u64,
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

impl<R: BufRead> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += count_newlines(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if amt > 0 {
            // The bytes being consumed are the front of the buffer just returned by
            // fill_buf, so this call does no I/O.
            if let Ok(buf) = self.inner.fill_buf() {
                self.newlines += count_newlines(&buf[..amt.min(buf.len())]);
            }
        }
        self.inner.consume(amt);
    }
}

/// A quick-xml reader that knows which format it reads and which line it is on.
pub(crate) struct XmlReader<R: BufRead> {
    reader: Reader<LineCounter<R>>,
    format: Format,
    /// The line on which the last event returned by [`XmlReader::next`] starts.
    event_line: u64,
}

impl<R: BufRead> XmlReader<R> {
    pub fn new(inner: R, format: Format) -> Self {
        let mut reader = Reader::from_reader(LineCounter { inner, newlines: 0 });
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_dangling_amp = false;
        XmlReader {
            reader,
            format,
            event_line: 1,
        }
    }

    fn current_line(&self) -> u64 {
        self.reader.get_ref().newlines + 1
    }

    /// The next event. A DTD that declares entities is refused here.
    pub fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, ParseError> {
        buf.clear();
        self.event_line = self.current_line();
        match self.reader.read_event_into(buf) {
            Ok(Event::DocType(dtd)) => {
                if dtd.contains("ENTITY") {
                    Err(self.error("a DTD declaring entities is not accepted"))
                } else {
                    Ok(Event::DocType(dtd))
                }
            }
            Ok(event) => Ok(event),
            Err(e) => Err(ParseError::new(
                self.format,
                Some(self.current_line()),
                format!("not well-formed XML: {e}"),
            )),
        }
    }

    /// An error about the element or text last returned by [`XmlReader::next`].
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.format, Some(self.event_line), message)
    }

    /// An error about the end of the document.
    pub fn error_at_end(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.format, Some(self.current_line()), message)
    }

    /// The value of one attribute of `e`, entities resolved (predefined ones only).
    pub fn attr<'a>(
        &self,
        e: &'a BytesStart<'_>,
        key: &str,
    ) -> Result<Option<Cow<'a, str>>, ParseError> {
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.error(format!("bad attribute: {err}")))?;
            if attr.key.local_name().as_ref() == key {
                return attr
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map(Some)
                    .map_err(|err| self.error(format!("attribute {key}: {err}")));
            }
        }
        Ok(None)
    }

    /// An attribute that must be present.
    pub fn required_attr<'a>(
        &self,
        e: &'a BytesStart<'_>,
        key: &str,
    ) -> Result<Cow<'a, str>, ParseError> {
        let name = e.local_name();
        self.attr(e, key)?.ok_or_else(|| {
            self.error(format!(
                "<{}> has no {key} attribute",
                String::from_utf8_lossy(name.as_ref().as_bytes())
            ))
        })
    }

    /// An attribute that must be a non-negative integer, when present.
    pub fn u64_attr(&self, e: &BytesStart<'_>, key: &str) -> Result<Option<u64>, ParseError> {
        match self.attr(e, key)? {
            None => Ok(None),
            Some(v) => super::parse_u64(v.trim().as_bytes())
                .map(Some)
                .ok_or_else(|| {
                    self.error(format!(
                        "{key}={} is not a non-negative integer",
                        super::shown(v.as_bytes())
                    ))
                }),
        }
    }

    /// The text a general reference (`&amp;`, `&#10;`) in element content stands for.
    pub fn resolve_ref(&self, r: &BytesRef<'_>) -> Result<String, ParseError> {
        match r.resolve_char_ref() {
            Ok(Some(c)) => return Ok(c.to_string()),
            Ok(None) => {}
            Err(e) => return Err(self.error(format!("bad character reference: {e}"))),
        }
        quick_xml::escape::resolve_predefined_entity(r)
            .map(str::to_owned)
            .ok_or_else(|| self.error(format!("undefined entity &{};", &**r)))
    }
}

/// The format an XML document is in, from its root element (for [`super::detect`]).
/// A document's expected root element and how deep the reader is inside it: the checks
/// every XML report format makes (wrong root, no root, cut off before the root closed).
pub struct Root {
    name: &'static str,
    seen: bool,
    depth: u32,
}

impl Root {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            seen: false,
            depth: 0,
        }
    }

    /// An element starts (`empty`: it also ends); the first must be the root.
    pub fn enter<R: BufRead>(
        &mut self,
        xml: &XmlReader<R>,
        element: &str,
        empty: bool,
    ) -> Result<(), ParseError> {
        if !self.seen {
            if element != self.name {
                return Err(xml.error(format!("root element is <{element}>, not <{}>", self.name)));
            }
            self.seen = true;
        }
        if !empty {
            self.depth += 1;
        }
        Ok(())
    }

    /// An element ends.
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// At the end of the input: the root was there and was closed.
    pub fn finish<R: BufRead>(&self, xml: &XmlReader<R>) -> Result<(), ParseError> {
        if !self.seen {
            return Err(xml.error_at_end(format!("no <{}> element", self.name)));
        }
        if self.depth > 0 {
            return Err(xml.error_at_end(format!(
                "the document ends before </{}> (truncated?)",
                self.name
            )));
        }
        Ok(())
    }
}

pub(crate) fn detect_root(head: &[u8]) -> Option<Format> {
    let mut reader = Reader::from_reader(head);
    let mut buf = Vec::new();
    // Declarations, comments, a DTD and whitespace may come before the root.
    for _ in 0..64 {
        buf.clear();
        let root = match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => e,
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => continue,
        };
        let name = root.local_name();
        return match name.as_ref() {
            // Clover's root is <coverage clover="..."> too.
            "coverage" if !root_has_attr(&root, "clover") => Some(Format::Cobertura),
            "report" => Some(Format::Jacoco),
            "testsuites" | "testsuite" => Some(Format::Junit),
            _ => None,
        };
    }
    None
}

fn root_has_attr(e: &BytesStart<'_>, key: &str) -> bool {
    e.attributes()
        .flatten()
        .any(|a| a.key.local_name().as_ref() == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_with_lines(xml: &str) -> Vec<(String, u64)> {
        let mut r = XmlReader::new(xml.as_bytes(), Format::Junit);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match r.next(&mut buf) {
                Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                    out.push((e.local_name().as_ref().to_string(), r.event_line))
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        out
    }

    #[test]
    fn events_carry_the_line_they_start_on() {
        let got = events_with_lines("<a>\n  <b/>\n\n  <c\n   x='1'/>\n<d/></a>");
        assert_eq!(
            got,
            vec![
                ("a".to_string(), 1),
                ("b".to_string(), 2),
                ("c".to_string(), 4),
                ("d".to_string(), 6)
            ]
        );
    }

    #[test]
    fn entity_declarations_are_refused() {
        let xml = "<?xml version=\"1.0\"?>\n<!DOCTYPE r [\n<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n<testsuite>&xxe;</testsuite>";
        let mut r = XmlReader::new(xml.as_bytes(), Format::Junit);
        let mut buf = Vec::new();
        let err = loop {
            match r.next(&mut buf) {
                Ok(Event::Eof) => panic!("accepted a DTD with entities"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("entities"), "{err}");
    }

    #[test]
    fn unknown_entities_are_errors_not_fetched() {
        let r = XmlReader::new(&b""[..], Format::Junit);
        assert_eq!(r.resolve_ref(&BytesRef::new("lt")).ok(), Some("<".into()));
        assert_eq!(r.resolve_ref(&BytesRef::new("#x3C")).ok(), Some("<".into()));
        assert_eq!(r.resolve_ref(&BytesRef::new("#10")).ok(), Some("\n".into()));
        let err = r.resolve_ref(&BytesRef::new("xxe")).err();
        assert!(err.is_some_and(|e| e.message.contains("undefined entity &xxe;")));
    }
}
