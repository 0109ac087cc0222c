//! `{{…}}` templates in step paths, headers and bodies: compiled once, rendered per request.
//!
//! A template is a list of pieces — literal bytes, a captured variable, or a built-in (`vu`,
//! `iteration`, `uuid`, `now_ms`, `random(a,b)`, `pick(a,b,…)`). Compiling resolves every name, so
//! an unknown variable is a validation error, never a runtime surprise. Rendering appends to a
//! caller-owned buffer and allocates nothing; each template escapes what it inserts for where it
//! sits (JSON string content, a header value, a URL path), so a captured value cannot break the
//! request's framing.

use std::io::Write as _;

/// Built-in names, for messages and for refusing them as capture names.
pub const BUILTINS: [&str; 7] = [
    "vu",
    "iteration",
    "uuid",
    "now_ms",
    "random",
    "pick",
    "msg_id",
];

/// Where a template's output goes, which decides how inserted values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Raw bytes (request bodies written as text).
    None,
    /// Inside a JSON string literal: quotes, backslashes and control characters escaped.
    JsonString,
    /// A header value: CR, LF and NUL dropped.
    Header,
    /// A URL path or query: bytes outside RFC 3986's unreserved and sub-delims set percent-encoded.
    Path,
    /// A form field (`application/x-www-form-urlencoded`): space as `+`, the rest but
    /// alphanumerics and `*-._` percent-encoded.
    Form,
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Literal(Vec<u8>),
    Var(usize),
    Vu,
    Iteration,
    Uuid,
    NowMs,
    Random(i64, i64),
    /// `m{vu}-{iteration}`: a WebSocket message's id, unique in a scenario, found again in
    /// the reply to correlate it.
    MsgId,
    Pick(Vec<Vec<u8>>),
}

/// A compiled template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
    escape: Escape,
}

/// What rendering needs from the virtual user.
pub struct RenderContext<'a> {
    pub vu: u64,
    pub iteration: u64,
    /// Captured variables, indexed as compiled.
    pub vars: &'a [Vec<u8>],
    pub rng: &'a mut fastrand::Rng,
    /// Milliseconds since the Unix epoch, for `now_ms`.
    pub now_ms: u64,
}

/// Why a template does not compile; `offset` is a byte offset into its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Compiles `text`. `lookup` maps a variable name to its index, or says why it cannot be used.
    pub fn compile(
        text: &str,
        escape: Escape,
        lookup: &mut dyn FnMut(&str) -> Result<usize, String>,
    ) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut at = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Literal(rest.as_bytes()[..open].to_vec()));
            }
            let Some(close) = rest[open..].find("}}") else {
                return Err(TemplateError {
                    offset: at + open,
                    message: "`{{` without a closing `}}`".into(),
                });
            };
            let expr = rest[open + 2..open + close].trim();
            let piece = parse_expr(expr, lookup).map_err(|message| TemplateError {
                offset: at + open,
                message,
            })?;
            pieces.push(piece);
            at += open + close + 2;
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.as_bytes().to_vec()));
        }
        Ok(Template { pieces, escape })
    }

    /// Bytes sent as they are (a body file, which need not be UTF-8).
    pub fn bytes(bytes: Vec<u8>) -> Template {
        Template {
            pieces: vec![Piece::Literal(bytes)],
            escape: Escape::None,
        }
    }

    /// A template of fixed text (never fails; no placeholders are interpreted).
    pub fn literal(text: &str, escape: Escape) -> Template {
        let pieces = if text.is_empty() {
            Vec::new()
        } else {
            vec![Piece::Literal(text.as_bytes().to_vec())]
        };
        Template { pieces, escape }
    }

    /// True when the template has no placeholder: it renders the same bytes every time.
    pub fn is_static(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Literal(_)))
    }

    /// Variables this template reads.
    pub fn vars(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(*v),
            _ => None,
        })
    }

    /// Appends the rendered template to `out`.
    pub fn render(&self, cx: &mut RenderContext<'_>, out: &mut Vec<u8>) {
        for piece in &self.pieces {
            match piece {
                // Literals were written by the scenario's author: not escaped.
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Var(i) => {
                    let value = cx.vars.get(*i).map_or(&[][..], Vec::as_slice);
                    push_escaped(out, value, self.escape);
                }
                Piece::Vu => {
                    let _ = write!(out, "{}", cx.vu);
                }
                Piece::Iteration => {
                    let _ = write!(out, "{}", cx.iteration);
                }
                Piece::NowMs => {
                    let _ = write!(out, "{}", cx.now_ms);
                }
                Piece::MsgId => write_msg_id(out, cx.vu, cx.iteration),
                Piece::Random(lo, hi) => {
                    let _ = write!(out, "{}", cx.rng.i64(*lo..=*hi));
                }
                Piece::Pick(choices) => {
                    let i = cx.rng.usize(..choices.len());
                    push_escaped(out, &choices[i], self.escape);
                }
                Piece::Uuid => {
                    // Version 4, variant 1.
                    let b = cx.rng.u128(..).to_be_bytes();
                    let mut u = b;
                    u[6] = (u[6] & 0x0f) | 0x40;
                    u[8] = (u[8] & 0x3f) | 0x80;
                    for (i, byte) in u.iter().enumerate() {
                        if matches!(i, 4 | 6 | 8 | 10) {
                            out.push(b'-');
                        }
                        let _ = write!(out, "{byte:02x}");
                    }
                }
            }
        }
    }
}

fn parse_expr(
    expr: &str,
    lookup: &mut dyn FnMut(&str) -> Result<usize, String>,
) -> Result<Piece, String> {
    if let Some(args) = call_args(expr, "random") {
        let parts: Vec<&str> = args.split(',').map(str::trim).collect();
        let parsed: Option<Vec<i64>> = parts.iter().map(|p| p.parse().ok()).collect();
        return match parsed.as_deref() {
            Some([lo, hi]) if lo <= hi => Ok(Piece::Random(*lo, *hi)),
            _ => Err(format!(
                "`{{{{{expr}}}}}`: random takes two integers, low ≤ high, e.g. {{{{random(1,100)}}}}"
            )),
        };
    }
    if let Some(args) = call_args(expr, "pick") {
        let choices: Vec<Vec<u8>> = args
            .split(',')
            .map(|c| c.trim().as_bytes().to_vec())
            .filter(|c| !c.is_empty())
            .collect();
        if choices.is_empty() {
            return Err(format!(
                "`{{{{{expr}}}}}`: pick needs at least one choice, e.g. {{{{pick(a,b,c)}}}}"
            ));
        }
        return Ok(Piece::Pick(choices));
    }
    match expr {
        "vu" => Ok(Piece::Vu),
        "iteration" => Ok(Piece::Iteration),
        "uuid" => Ok(Piece::Uuid),
        "msg_id" => Ok(Piece::MsgId),
        "now_ms" => Ok(Piece::NowMs),
        // `feeder.column` names a data feeder's column.
        name if is_identifier(name)
            || name
                .split_once('.')
                .is_some_and(|(a, b)| is_identifier(a) && is_identifier(b)) =>
        {
            lookup(name).map(Piece::Var)
        }
        other => Err(format!(
            "`{{{{{other}}}}}` is not a variable name or a built-in"
        )),
    }
}

fn call_args<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    expr.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn push_escaped(out: &mut Vec<u8>, value: &[u8], escape: Escape) {
    match escape {
        Escape::None => out.extend_from_slice(value),
        Escape::Header => out.extend(
            value
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\r' | b'\n' | 0)),
        ),
        Escape::JsonString => {
            for &b in value {
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0..=0x1f => {
                        let _ = write!(out, "\\u{b:04x}");
                    }
                    _ => out.push(b),
                }
            }
        }
        Escape::Form => form_encode(value, out),
        Escape::Path => {
            for chunk in percent_encoding::percent_encode(value, PATH_KEEPS) {
                out.extend_from_slice(chunk.as_bytes());
            }
        }
    }
}

/// What a path or query keeps as it is: RFC 3986's unreserved characters, `:`, `@` and the
/// sub-delims but `&` and `=` (so a value cannot add a query field); everything else, and every
/// non-ASCII byte, is percent-encoded.
const PATH_KEEPS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b':')
    .remove(b'@');

/// A message id as `{{msg_id}}` renders it.
pub fn write_msg_id(out: &mut Vec<u8>, vu: u64, iteration: u64) {
    let _ = write!(out, "m{vu}-{iteration}.");
}

/// `application/x-www-form-urlencoded` encoding of `value` onto `out` (no allocation: the
/// encoder yields slices of the input or of a static table).
pub fn form_encode(value: &[u8], out: &mut Vec<u8>) {
    for chunk in form_urlencoded::byte_serialize(value) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str, escape: Escape) -> Result<Template, TemplateError> {
        Template::compile(text, escape, &mut |name| match name {
            "token" => Ok(0),
            "id" => Ok(1),
            other => Err(format!("`{other}` is not defined")),
        })
    }

    fn render(t: &Template, vars: &[Vec<u8>]) -> String {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut out = Vec::new();
        t.render(
            &mut RenderContext {
                vu: 3,
                iteration: 9,
                vars,
                rng: &mut rng,
                now_ms: 1234,
            },
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renders_builtins_and_vars() {
        let t = compile(
            "/u/{{vu}}/{{ iteration }}/{{id}}?t={{now_ms}}",
            Escape::Path,
        )
        .unwrap();
        assert!(!t.is_static());
        assert_eq!(
            render(&t, &[b"x".to_vec(), b"a b/c".to_vec()]),
            "/u/3/9/a%20b%2Fc?t=1234"
        );
        let s = compile("/static/path", Escape::Path).unwrap();
        assert!(s.is_static());
        assert_eq!(render(&s, &[]), "/static/path");
    }

    #[test]
    fn escapes_by_context() {
        let vars = [
            b"he said \"hi\"\n".to_vec(),
            b"evil\r\nX-Injected: 1".to_vec(),
        ];
        let json = compile("{\"t\":\"{{token}}\"}", Escape::JsonString).unwrap();
        let rendered = render(&json, &vars);
        let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(parsed["t"], "he said \"hi\"\n");
        let header = compile("Bearer {{id}}", Escape::Header).unwrap();
        assert_eq!(render(&header, &vars), "Bearer evilX-Injected: 1");
    }

    #[test]
    fn random_pick_uuid() {
        let t = compile("{{random(5,7)}} {{pick(a, b)}} {{uuid}}", Escape::None).unwrap();
        let out = render(&t, &[]);
        let parts: Vec<&str> = out.split(' ').collect();
        let n: i64 = parts[0].parse().unwrap();
        assert!((5..=7).contains(&n));
        assert!(parts[1] == "a" || parts[1] == "b");
        assert_eq!(parts[2].len(), 36);
        assert_eq!(&parts[2][14..15], "4");
    }

    #[test]
    fn errors_point_at_the_placeholder() {
        let e = compile("/x/{{tokn}}", Escape::Path).unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("tokn"));
        assert!(compile("/x/{{vu", Escape::Path).is_err());
        assert!(compile("{{random(9,1)}}", Escape::None).is_err());
        assert!(compile("{{pick()}}", Escape::None).is_err());
        assert!(compile("{{a-b}}", Escape::None).is_err());
    }

    #[test]
    fn path_and_form_values_are_encoded() {
        let vars = [
            b"a-._~!$'()*+,;:@z /?#&=%\xc3\xa9".to_vec(),
            b"a b&c=d*-._~+\xc3\xa9".to_vec(),
        ];
        let path = compile("/{{token}}", Escape::Path).unwrap();
        assert_eq!(
            render(&path, &vars),
            "/a-._~!$'()*+,;:@z%20%2F%3F%23%26%3D%25%C3%A9"
        );
        let form = compile("q={{id}}", Escape::Form).unwrap();
        assert_eq!(render(&form, &vars), "q=a+b%26c%3Dd*-._%7E%2B%C3%A9");
        let mut out = b"k=".to_vec();
        form_encode(b"x y", &mut out);
        assert_eq!(out, b"k=x+y");
    }
}
