//! XML-RPC, just what Pingback needs, over quick-xml: decode a `methodCall`, encode a response
//! or a fault.
//!
//! Hand-written rather than dxr because the surface is tiny (strings, ints, arrays, structs) and
//! the security stance must be exact: a `<!DOCTYPE>` is refused outright (no DTDs, so no
//! billion-laughs or external entities), only XML's five predefined entities and character
//! references are decoded, and the caller caps the body before it gets here. Every malformed
//! input becomes an [`XmlRpcError`] the server turns into a proper fault (−32700 / −32600).

use quick_xml::Reader;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::writer::Writer;
use std::io::Cursor;

/// An XML-RPC value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Int(i64),
    Bool(bool),
    Double(f64),
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A decoded call.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodCall {
    pub method: String,
    pub params: Vec<Value>,
}

/// Why a body is not a call we can read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum XmlRpcError {
    /// Not well-formed XML (fault −32700).
    #[error("parse error: {0}")]
    Parse(String),
    /// Well-formed, but not an XML-RPC call (fault −32600).
    #[error("invalid XML-RPC: {0}")]
    Invalid(String),
}

impl XmlRpcError {
    pub fn fault_code(&self) -> i32 {
        match self {
            XmlRpcError::Parse(_) => -32700,
            XmlRpcError::Invalid(_) => -32600,
        }
    }
}

/// A tiny event tree: the call is small (capped), so building it whole keeps the grammar
/// checks readable.
#[derive(Debug)]
struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

/// The body as UTF-8: a declared `encoding` other than UTF-8 (WordPress installs in
/// ISO-8859-1 send that) or a UTF-16 byte-order mark is decoded, and the declaration, which
/// would now be wrong, is dropped.
fn to_utf8(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(body)
        && encoding != encoding_rs::UTF_8
    {
        let text = encoding.decode_without_bom_handling(&body[bom..]).0;
        return std::borrow::Cow::Owned(without_declaration(&text).as_bytes().to_vec());
    }
    let head = &body[..body.len().min(256)];
    let declared = head
        .strip_prefix(b"<?xml")
        .and_then(|rest| {
            let end = rest.windows(2).position(|w| w == b"?>")?;
            let decl = std::str::from_utf8(&rest[..end]).ok()?;
            let at = decl.find("encoding")?;
            let value = decl[at + 8..].trim_start().strip_prefix('=')?.trim_start();
            let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            let value = &value[1..];
            Some(value[..value.find(quote)?].to_string())
        })
        .and_then(|label| encoding_rs::Encoding::for_label(label.trim().as_bytes()));
    match declared {
        Some(encoding) if encoding != encoding_rs::UTF_8 => {
            let text = encoding.decode_without_bom_handling(body).0;
            std::borrow::Cow::Owned(without_declaration(&text).as_bytes().to_vec())
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}

fn without_declaration(text: &str) -> &str {
    match text
        .strip_prefix("<?xml")
        .and_then(|rest| rest.find("?>").map(|i| &rest[i + 2..]))
    {
        Some(rest) => rest,
        None => text,
    }
}

fn parse_tree(body: &[u8]) -> Result<Element, XmlRpcError> {
    let body = to_utf8(body);
    let mut reader = Reader::from_reader(body.as_ref());
    let config = reader.config_mut();
    config.trim_text(false);
    config.expand_empty_elements = true;
    let mut stack: Vec<Element> = vec![Element {
        name: String::new(),
        children: vec![],
        text: String::new(),
    }];
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| XmlRpcError::Parse(e.to_string()))?;
        match event {
            Event::DocType(_) => {
                return Err(XmlRpcError::Parse(
                    "DOCTYPE declarations are not accepted".into(),
                ));
            }
            Event::Start(e) => {
                if stack.len() > 64 {
                    return Err(XmlRpcError::Invalid("nesting too deep".into()));
                }
                let name = e.local_name().as_ref().to_string();
                stack.push(Element {
                    name,
                    children: vec![],
                    text: String::new(),
                });
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| XmlRpcError::Parse("unbalanced end tag".into()))?;
                stack
                    .last_mut()
                    .ok_or_else(|| XmlRpcError::Parse("unbalanced end tag".into()))?
                    .children
                    .push(done);
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                stack.last_mut().expect("root stays").text.push_str(&text);
            }
            Event::GeneralRef(r) => {
                let name = r.as_ref().to_string();
                let ch = match name.as_str() {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => r
                        .resolve_char_ref()
                        .map_err(|e| XmlRpcError::Parse(e.to_string()))?,
                };
                let ch =
                    ch.ok_or_else(|| XmlRpcError::Parse(format!("unknown entity &{name};")))?;
                stack.last_mut().expect("root stays").text.push(ch);
            }
            Event::CData(t) => {
                stack
                    .last_mut()
                    .expect("root stays")
                    .text
                    .push_str(&t.xml10_content());
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if stack.len() != 1 {
        return Err(XmlRpcError::Parse("unexpected end of document".into()));
    }
    let mut root = stack.pop().expect("checked");
    if root.children.len() != 1 {
        return Err(XmlRpcError::Parse("expected one root element".into()));
    }
    Ok(root.children.remove(0))
}

/// What a server answered to a call: its value, or its fault.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Value(Value),
    Fault { code: i64, message: String },
}

/// Decodes a `methodResponse` (the sending side: answers to our pingbacks).
pub fn parse_response(body: &[u8]) -> Result<Answer, XmlRpcError> {
    let root = parse_tree(body)?;
    if root.name != "methodResponse" {
        return Err(XmlRpcError::Invalid(format!(
            "root element is <{}>, not <methodResponse>",
            root.name
        )));
    }
    let value_in = |parent: &Element| {
        parent
            .children
            .iter()
            .find(|c| c.name == "value")
            .ok_or_else(|| XmlRpcError::Invalid(format!("<{}> without <value>", parent.name)))
            .and_then(decode_value)
    };
    if let Some(fault) = root.children.iter().find(|c| c.name == "fault") {
        let Value::Struct(members) = value_in(fault)? else {
            return Err(XmlRpcError::Invalid("a fault that is not a struct".into()));
        };
        let member = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let code = match member("faultCode") {
            Some(Value::Int(code)) => *code,
            _ => 0,
        };
        let message = member("faultString")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(Answer::Fault { code, message });
    }
    let param = root
        .children
        .iter()
        .find(|c| c.name == "params")
        .and_then(|p| p.children.iter().find(|c| c.name == "param"))
        .ok_or_else(|| XmlRpcError::Invalid("a response without a value".into()))?;
    Ok(Answer::Value(value_in(param)?))
}

/// Decodes a `methodCall`.
pub fn parse_call(body: &[u8]) -> Result<MethodCall, XmlRpcError> {
    let root = parse_tree(body)?;
    if root.name != "methodCall" {
        return Err(XmlRpcError::Invalid(format!(
            "root element is <{}>, not <methodCall>",
            root.name
        )));
    }
    let method = root
        .children
        .iter()
        .find(|c| c.name == "methodName")
        .map(|m| m.text.trim().to_string())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| XmlRpcError::Invalid("no <methodName>".into()))?;
    let mut params = Vec::new();
    if let Some(p) = root.children.iter().find(|c| c.name == "params") {
        for param in p.children.iter().filter(|c| c.name == "param") {
            let value = param
                .children
                .iter()
                .find(|c| c.name == "value")
                .ok_or_else(|| XmlRpcError::Invalid("<param> without <value>".into()))?;
            params.push(decode_value(value)?);
        }
    }
    Ok(MethodCall { method, params })
}

fn decode_value(v: &Element) -> Result<Value, XmlRpcError> {
    let Some(typed) = v.children.first() else {
        return Ok(Value::String(v.text.clone()));
    };
    let bad = |what: &str| XmlRpcError::Invalid(format!("bad <{what}> value {:?}", typed.text));
    Ok(match typed.name.as_str() {
        "string" => Value::String(typed.text.clone()),
        "int" | "i4" | "i8" => Value::Int(typed.text.trim().parse().map_err(|_| bad(&typed.name))?),
        "boolean" => Value::Bool(match typed.text.trim() {
            "1" => true,
            "0" => false,
            _ => return Err(bad("boolean")),
        }),
        "double" => Value::Double(typed.text.trim().parse().map_err(|_| bad("double"))?),
        "dateTime.iso8601" | "base64" => Value::String(typed.text.trim().to_string()),
        "array" => {
            let data = typed.children.iter().find(|c| c.name == "data");
            Value::Array(
                data.map(|d| {
                    d.children
                        .iter()
                        .filter(|c| c.name == "value")
                        .map(decode_value)
                        .collect()
                })
                .transpose()?
                .unwrap_or_default(),
            )
        }
        "struct" => {
            let mut members = Vec::new();
            for m in typed.children.iter().filter(|c| c.name == "member") {
                let name = m
                    .children
                    .iter()
                    .find(|c| c.name == "name")
                    .map(|n| n.text.clone())
                    .unwrap_or_default();
                let value = m
                    .children
                    .iter()
                    .find(|c| c.name == "value")
                    .ok_or_else(|| bad("member"))?;
                members.push((name, decode_value(value)?));
            }
            Value::Struct(members)
        }
        "nil" => Value::String(String::new()),
        other => {
            return Err(XmlRpcError::Invalid(format!(
                "unknown value type <{other}>"
            )));
        }
    })
}

type W = Writer<Cursor<Vec<u8>>>;

fn write_value(w: &mut W, v: &Value) -> std::io::Result<()> {
    w.create_element("value").write_inner_content(|w| {
        match v {
            Value::String(s) => {
                w.create_element("string")
                    .write_text_content(BytesText::new(s))?;
            }
            Value::Int(i) => {
                w.create_element("int")
                    .write_text_content(BytesText::new(&i.to_string()))?;
            }
            Value::Bool(b) => {
                w.create_element("boolean")
                    .write_text_content(BytesText::new(if *b { "1" } else { "0" }))?;
            }
            Value::Double(d) => {
                w.create_element("double")
                    .write_text_content(BytesText::new(&d.to_string()))?;
            }
            Value::Array(items) => {
                w.create_element("array").write_inner_content(|w| {
                    w.create_element("data").write_inner_content(|w| {
                        for item in items {
                            write_value(w, item)?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
            }
            Value::Struct(members) => {
                w.create_element("struct").write_inner_content(|w| {
                    for (name, value) in members {
                        w.create_element("member").write_inner_content(|w| {
                            w.create_element("name")
                                .write_text_content(BytesText::new(name))?;
                            write_value(w, value)
                        })?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn document(body: impl FnOnce(&mut W) -> std::io::Result<()>) -> Vec<u8> {
    let mut w = Writer::new(Cursor::new(Vec::new()));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .expect("memory write");
    w.create_element("methodResponse")
        .write_inner_content(body)
        .expect("memory write");
    w.into_inner().into_inner()
}

/// A successful response carrying one value.
pub fn response(value: &Value) -> Vec<u8> {
    document(|w| {
        w.create_element("params").write_inner_content(|w| {
            w.create_element("param")
                .write_inner_content(|w| write_value(w, value))?;
            Ok(())
        })?;
        Ok(())
    })
}

/// A fault response.
pub fn fault(code: i32, message: &str) -> Vec<u8> {
    let value = Value::Struct(vec![
        ("faultCode".into(), Value::Int(code.into())),
        ("faultString".into(), Value::String(message.into())),
    ]);
    document(|w| {
        w.create_element("fault")
            .write_inner_content(|w| write_value(w, &value))?;
        Ok(())
    })
}

/// Builds a call (for tests and for anyone sending pings with backfeed's types).
pub fn call(method: &str, params: &[Value]) -> Vec<u8> {
    let mut w = Writer::new(Cursor::new(Vec::new()));
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))
        .expect("memory write");
    w.create_element("methodCall")
        .write_inner_content(|w| {
            w.create_element("methodName")
                .write_text_content(BytesText::new(method))?;
            w.create_element("params").write_inner_content(|w| {
                for p in params {
                    w.create_element("param")
                        .write_inner_content(|w| write_value(w, p))?;
                }
                Ok(())
            })?;
            Ok(())
        })
        .expect("memory write");
    w.into_inner().into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_and_faults_decode() {
        let ok = response(&Value::String("registered".into()));
        assert_eq!(
            parse_response(&ok).unwrap(),
            Answer::Value(Value::String("registered".into()))
        );
        let f = fault(0x30, "already registered");
        assert_eq!(
            parse_response(&f).unwrap(),
            Answer::Fault {
                code: 0x30,
                message: "already registered".into()
            }
        );
    }

    #[test]
    fn declared_encodings_are_decoded() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall><methodName>pingback.ping</methodName><params><param><value><string>http://a.example/M\xfcnchen</string></value></param><param><value>x</value></param></params></methodCall>";
        let call = parse_call(latin1).unwrap();
        assert_eq!(
            call.params[0].as_str(),
            Some("http://a.example/M\u{fc}nchen")
        );
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(
                "<?xml version=\"1.0\" encoding=\"UTF-16\"?><methodCall><methodName>system.listMethods</methodName></methodCall>"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(parse_call(&utf16).unwrap().method, "system.listMethods");
    }

    #[test]
    fn decodes_a_pingback_call_with_untyped_and_typed_strings() {
        let body =
            br#"<?xml version="1.0"?><methodCall><methodName>pingback.ping</methodName><params>
            <param><value><string>https://a.example/?x=1&amp;y=2</string></value></param>
            <param><value>https://b.example/p#frag</value></param></params></methodCall>"#;
        let call = parse_call(body).unwrap();
        assert_eq!(call.method, "pingback.ping");
        assert_eq!(call.params[0].as_str(), Some("https://a.example/?x=1&y=2"));
        assert_eq!(call.params[1].as_str(), Some("https://b.example/p#frag"));
    }

    #[test]
    fn round_trips_through_the_encoder() {
        let params = [
            Value::String("<&>".into()),
            Value::Int(-3),
            Value::Array(vec![Value::Bool(true)]),
        ];
        let call = parse_call(&super::call("m", &params)).unwrap();
        assert_eq!(call.params, params);
    }

    #[test]
    fn refuses_doctypes_and_garbage() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
            <methodCall><methodName>&lol2;</methodName></methodCall>"#;
        assert_eq!(parse_call(laughs).unwrap_err().fault_code(), -32700);
        assert_eq!(
            parse_call(b"not xml at all <<<").unwrap_err().fault_code(),
            -32700
        );
        assert_eq!(
            parse_call(b"<methodResponse/>").unwrap_err().fault_code(),
            -32600
        );
        assert_eq!(
            parse_call(b"<methodCall><params/></methodCall>")
                .unwrap_err()
                .fault_code(),
            -32600
        );
        assert!(parse_call(b"<methodCall><methodName>x</methodName>").is_err());
    }

    #[test]
    fn fault_has_the_spec_shape() {
        let text = String::from_utf8(fault(17, "no link")).unwrap();
        assert!(text.contains("<fault><value><struct><member><name>faultCode</name><value><int>17</int></value></member>"), "{text}");
    }
}
