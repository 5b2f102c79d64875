//! A small, tolerant XML reader for SOAP answers: a tree of elements by *local* name.
//!
//! Cameras disagree on namespace prefixes (`tptz:`, `ns2:`, none at all) and on whitespace,
//! so names are compared without their prefix and nothing is validated that we do not read.
//! It is not a general XML parser: no DTDs, no entities beyond the five predefined ones and
//! character references. It is bounded (size, depth, element count) because the bytes come
//! from a device on the network; malformed input is an error, never a panic.

use std::fmt;

/// Answers larger than this are not ONVIF answers (a GetPresets of 300 presets is ~100 KB).
pub const MAX_XML: usize = 1 << 20;
const MAX_DEPTH: usize = 64;
const MAX_ELEMENTS: usize = 20_000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Element {
    /// The local name: `tt:PanTilt` → `PanTilt`.
    pub name: String,
    /// Attributes by local name, values unescaped.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The element's own text (CDATA included), unescaped and trimmed.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError {
    /// Byte offset where reading stopped.
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed XML at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for XmlError {}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element named `name` at any depth (this one included), depth first.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Every element named `name` at any depth, in document order (not below a match).
    pub fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        if self.name == name {
            out.push(self);
            return;
        }
        for c in &self.children {
            c.find_all(name, out);
        }
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }
}

/// `ns:Name` → `Name`.
fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

/// Reads a document and returns its root element.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    if input.len() > MAX_XML {
        return Err(XmlError { at: MAX_XML, what: "document too large" });
    }
    let text = std::str::from_utf8(input).map_err(|e| XmlError { at: e.valid_up_to(), what: "not UTF-8" })?;
    Reader { text, pos: 0, elements: 0 }.document()
}

/// A start tag's qualified name, whether it closes itself (`<a/>`), and its attributes.
type StartTag<'a> = (&'a str, bool, Vec<(String, String)>);

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    elements: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn err<T>(&self, what: &'static str) -> Result<T, XmlError> {
        Err(XmlError { at: self.pos, what })
    }

    /// Skips past `end`, or fails with `what`.
    fn skip_past(&mut self, end: &str, what: &'static str) -> Result<(), XmlError> {
        match self.rest().find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => self.err(what),
        }
    }

    /// Skips the prolog, comments and processing instructions; reads the root element.
    fn document(mut self) -> Result<Element, XmlError> {
        loop {
            let rest = self.rest().trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            self.pos = self.text.len() - rest.len();
            if rest.starts_with("<?") {
                self.skip_past("?>", "unterminated processing instruction")?;
            } else if rest.starts_with("<!--") {
                self.skip_past("-->", "unterminated comment")?;
            } else if rest.starts_with("<!") {
                self.skip_past(">", "unterminated declaration")?;
            } else if rest.starts_with('<') {
                return self.element(0);
            } else {
                return self.err("expected an element");
            }
        }
    }

    /// Reads an element starting at `<`.
    fn element(&mut self, depth: usize) -> Result<Element, XmlError> {
        if depth >= MAX_DEPTH {
            return self.err("nested too deeply");
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return self.err("too many elements");
        }
        self.pos += 1; // the '<'
        let (qname, empty, attrs) = self.start_tag()?;
        let mut e = Element { name: local(qname).to_string(), attrs, ..Element::default() };
        if empty {
            return Ok(e);
        }
        let mut text = String::new();
        loop {
            let rest = self.rest();
            let Some(lt) = rest.find('<') else { return self.err("unclosed element") };
            text.push_str(&unescape(rest.get(..lt).unwrap_or(""), self.pos)?);
            self.pos += lt;
            let rest = self.rest();
            if let Some(after) = rest.strip_prefix("</") {
                let Some(gt) = after.find('>') else { return self.err("unterminated end tag") };
                let name = after.get(..gt).unwrap_or("").trim();
                if local(name) != e.name {
                    return self.err("end tag does not match its start tag");
                }
                self.pos += 2 + gt + 1;
                e.text = text.trim().to_string();
                return Ok(e);
            } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
                let Some(end) = after.find("]]>") else { return self.err("unterminated CDATA") };
                text.push_str(after.get(..end).unwrap_or(""));
                self.pos += 9 + end + 3;
            } else if rest.starts_with("<!--") {
                self.skip_past("-->", "unterminated comment")?;
            } else if rest.starts_with("<?") {
                self.skip_past("?>", "unterminated processing instruction")?;
            } else {
                let child = self.element(depth + 1)?;
                e.children.push(child);
            }
        }
    }

    /// Reads `name attr="v" ...>` or `.../>` after the `<`.
    fn start_tag(&mut self) -> Result<StartTag<'a>, XmlError> {
        let rest = self.rest();
        let name_len = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(rest.len());
        let name = rest.get(..name_len).unwrap_or("");
        if name.is_empty() {
            return self.err("expected an element name");
        }
        self.pos += name_len;
        let mut attrs = Vec::new();
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("/>") {
                self.pos += 2;
                return Ok((name, true, attrs));
            }
            if trimmed.starts_with('>') {
                self.pos += 1;
                return Ok((name, false, attrs));
            }
            let Some(eq) = trimmed.find('=') else { return self.err("expected an attribute") };
            let key = trimmed.get(..eq).unwrap_or("").trim();
            if key.is_empty() || key.contains(['>', '<', '/']) {
                return self.err("expected an attribute name");
            }
            let after = trimmed.get(eq + 1..).unwrap_or("");
            let value_rest = after.trim_start();
            let Some(quote) = value_rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                return self.err("expected a quoted attribute value");
            };
            let body = value_rest.get(1..).unwrap_or("");
            let Some(close) = body.find(quote) else { return self.err("unterminated attribute value") };
            let raw = body.get(..close).unwrap_or("");
            let value = unescape(raw, self.pos)?;
            // Namespace declarations are not attributes we read.
            if key != "xmlns" && !key.starts_with("xmlns:") {
                attrs.push((local(key).to_string(), value));
            }
            let consumed = (trimmed.len() - value_rest.len()) + 1 + close + 1;
            self.pos += consumed;
        }
    }
}

/// Replaces the predefined entities and character references.
fn unescape(raw: &str, at: usize) -> Result<String, XmlError> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        let Some((entity, tail)) = after.split_once(';') else {
            return Err(XmlError { at, what: "unterminated entity reference" });
        };
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    entity.strip_prefix('#').and_then(|d| d.parse::<u32>().ok())
                };
                code.and_then(char::from_u32)
            }
        };
        match c {
            Some(c) => out.push(c),
            None => return Err(XmlError { at, what: "unknown entity reference" }),
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_local_names_attributes_and_text() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
            <!-- a camera -->
            <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tptz="x">
              <env:Body><tptz:GetPresetsResponse>
                <tptz:Preset token="1"><tt:Name>Gate &amp; door</tt:Name></tptz:Preset>
                <Preset token='two'><Name><![CDATA[<yard>]]></Name><tt:PTZPosition/></Preset>
              </tptz:GetPresetsResponse></env:Body>
            </env:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Envelope");
        assert!(root.attrs.is_empty(), "namespace declarations are not attributes");
        let mut presets = Vec::new();
        root.find_all("Preset", &mut presets);
        assert_eq!(presets.len(), 2);
        assert_eq!(presets[0].attr("token"), Some("1"));
        assert_eq!(presets[0].child("Name").unwrap().text, "Gate & door");
        assert_eq!(presets[1].attr("token"), Some("two"));
        assert_eq!(presets[1].child("Name").unwrap().text, "<yard>");
        assert_eq!(root.path(&["Body", "GetPresetsResponse"]).unwrap().children.len(), 2);
    }

    #[test]
    fn refuses_malformed_documents_with_a_position() {
        for (doc, what) in [
            (&b"<a><b></a>"[..], "end tag does not match"),
            (b"<a>", "unclosed element"),
            (b"<a x=1/>", "quoted attribute"),
            (b"<a>&bogus;</a>", "unknown entity"),
            (b"text", "expected an element"),
            (b"<a>\xff</a>", "not UTF-8"),
        ] {
            let e = parse(doc).unwrap_err();
            assert!(e.to_string().contains(what), "{:?}: {e}", String::from_utf8_lossy(doc));
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).unwrap_err().to_string().contains("deeply"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn near_xml_never_panics(s in "(<[a-z:]{0,4}( [a-z]{1,2}=(\"[^\"]{0,4}\"|'x'))?/?>|</[a-z:]{0,4}>|&[a-z#x0-9]{0,5};|<!\\[CDATA\\[|\\]\\]>|<!--|-->|<\\?|\\?>|[a-zé€ ]{0,3}){0,30}") {
            let _ = parse(s.as_bytes());
        }
    }
}
