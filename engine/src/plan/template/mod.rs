//! `{{…}}` templates in step paths, headers and bodies: compiled once, rendered per request.
//!
//! A template is a list of pieces — literal bytes, a captured variable, or an expression
//! (`expr`: built-ins, run-wide values, functions, arithmetic). Compiling resolves every name,
//! so an unknown variable is a validation error, never a runtime surprise, and computes what
//! is the same every time. Rendering appends to a caller-owned buffer and allocates nothing;
//! each template escapes what it inserts for where it sits (JSON string content, a header
//! value, a URL path), so a captured value cannot break the request's framing.

pub mod env;
mod eval;
mod expr;

use std::io::Write as _;

pub use self::expr::RenderError;
use self::expr::{Expr, Ty};

/// Built-in names, for messages and for refusing them as capture names.
pub const BUILTINS: [&str; 11] = [
    "vu",
    "iteration",
    "uuid",
    "now_ms",
    "now_us",
    "now_s",
    "now_iso",
    "random",
    "pick",
    "msg_id",
    "body",
];

/// Functions, for "did you mean" hints.
pub const FUNCTIONS: [&str; 13] = [
    "env",
    "base64",
    "base64url",
    "hex",
    "sha256",
    "hmac_sha256",
    "urlencode",
    "random_string",
    "random",
    "pick",
    "int",
    "str",
    "len",
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

/// A run-wide value, set by `[[setup]]` (or a step count, for `[[teardown]]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum RunValue {
    Scalar(Vec<u8>),
    List(Vec<Vec<u8>>),
}

/// What `run.NAME` refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunRef {
    Scalar(usize),
    List(usize),
}

/// What the names in a template mean where it is compiled.
pub trait Names {
    /// A variable's slot, or why it cannot be used here.
    fn var(&mut self, name: &str) -> Result<usize, String>;
    /// `run.NAME`.
    fn run(&mut self, name: &str) -> Result<RunRef, String> {
        Err(format!(
            "`run.{name}` is not defined: run-wide values are captured by [[setup]] steps"
        ))
    }
    /// `run.count(STEP)`: a run slot the count is put in.
    fn count(&mut self, step: &str) -> Result<usize, String> {
        Err(format!(
            "`run.count({step})` is only known after the load: use it in [[teardown]] steps"
        ))
    }
    /// `{{body}}`: only a step's headers can read its body.
    fn body_allowed(&self) -> bool {
        false
    }
}

/// Variables only, resolved by a closure.
struct VarsOnly<'a>(&'a mut dyn FnMut(&str) -> Result<usize, String>);

impl Names for VarsOnly<'_> {
    fn var(&mut self, name: &str) -> Result<usize, String> {
        (self.0)(name)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Literal(Vec<u8>),
    Var(usize),
    /// Integers are never escaped; text is escaped as a variable is.
    Expr(Box<Expr>),
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
    /// Milliseconds since the Unix epoch, for `now_ms`, `now_s` and `now_iso`.
    pub now_ms: u64,
    /// Run-wide values, indexed as compiled.
    pub run: &'a [RunValue],
    /// The request body, for `{{body}}` in a header.
    pub body: &'a [u8],
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
        Template::compile_in(text, escape, &mut VarsOnly(lookup))
    }

    /// Compiles `text` where `names` says what each name means.
    pub fn compile_in(
        text: &str,
        escape: Escape,
        names: &mut dyn Names,
    ) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut at = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                push_literal(&mut pieces, &rest.as_bytes()[..open]);
            }
            let Some(close) = rest[open..].find("}}") else {
                return Err(TemplateError {
                    offset: at + open,
                    message: "`{{` without a closing `}}`".into(),
                });
            };
            let fail = |message| TemplateError {
                offset: at + open,
                message,
            };
            let e = expr::parse(rest[open + 2..open + close].trim(), names).map_err(fail)?;
            if e.ty() == Ty::Raw {
                return Err(fail(
                    "sha256 and hmac_sha256 give raw bytes: print them with hex(…), base64(…) or base64url(…)".into(),
                ));
            }
            match e {
                Expr::Var(v) => pieces.push(Piece::Var(v)),
                e if e.is_const() => {
                    let mut out = Vec::new();
                    let piece = Piece::Expr(Box::new(e));
                    let mut rng = fastrand::Rng::with_seed(0);
                    let mut cx = RenderContext {
                        vu: 0,
                        iteration: 0,
                        vars: &[],
                        rng: &mut rng,
                        now_ms: 0,
                        run: &[],
                        body: &[],
                    };
                    render_piece(&piece, escape, &mut cx, &mut out)
                        .map_err(|e| fail(e.message().into()))?;
                    push_literal(&mut pieces, &out);
                }
                e => pieces.push(Piece::Expr(Box::new(e))),
            }
            at += open + close + 2;
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            push_literal(&mut pieces, rest.as_bytes());
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

    /// The bytes of a static template.
    pub fn static_bytes(&self) -> Option<&[u8]> {
        match self.pieces.as_slice() {
            [] => Some(&[]),
            [Piece::Literal(b)] => Some(b),
            _ => None,
        }
    }

    /// Variables this template reads.
    pub fn vars(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(*v),
            _ => None,
        })
    }

    /// True when it reads `{{body}}`, so the body must be rendered first.
    pub fn reads_body(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Expr(e) if e.reads_body()))
    }

    /// Appends the rendered template to `out`. On an error (an index out of range, an
    /// overflow) `out` holds part of it: the caller drops the request.
    pub fn render(&self, cx: &mut RenderContext<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
        for piece in &self.pieces {
            render_piece(piece, self.escape, cx, out)?;
        }
        Ok(())
    }
}

fn push_literal(pieces: &mut Vec<Piece>, bytes: &[u8]) {
    if let Some(Piece::Literal(last)) = pieces.last_mut() {
        last.extend_from_slice(bytes);
    } else if !bytes.is_empty() {
        pieces.push(Piece::Literal(bytes.to_vec()));
    }
}

fn render_piece(
    piece: &Piece,
    escape: Escape,
    cx: &mut RenderContext<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RenderError> {
    match piece {
        // Literals were written by the scenario's author: not escaped.
        Piece::Literal(bytes) => out.extend_from_slice(bytes),
        Piece::Var(i) => {
            let value = cx.vars.get(*i).map_or(&[][..], Vec::as_slice);
            push_escaped(out, value, escape);
        }
        Piece::Expr(e) => {
            let start = out.len();
            e.eval_text(cx, out)?;
            if e.ty() == Ty::Text && escape != Escape::None {
                escape_tail(out, start, escape);
            }
        }
    }
    Ok(())
}

/// Escapes `out[start..]` in place: escaped bytes go after it, then move down over it.
fn escape_tail(out: &mut Vec<u8>, start: usize, escape: Escape) {
    let end = out.len();
    for i in start..end {
        let b = out[i];
        push_escaped(out, &[b], escape);
    }
    out.copy_within(end.., start);
    out.truncate(out.len() - (end - start));
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
                run: &[],
                body: &[],
            },
            &mut out,
        )
        .unwrap();
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

    struct WithRun;

    impl Names for WithRun {
        fn var(&mut self, name: &str) -> Result<usize, String> {
            match name {
                "id" => Ok(0),
                other => Err(format!("`{other}` is not defined")),
            }
        }
        fn run(&mut self, name: &str) -> Result<RunRef, String> {
            match name {
                "token" => Ok(RunRef::Scalar(0)),
                "sessions" => Ok(RunRef::List(1)),
                other => Err(format!("`run.{other}` is not defined")),
            }
        }
        fn body_allowed(&self) -> bool {
            true
        }
    }

    fn render_with(text: &str, escape: Escape, body: &[u8]) -> Result<String, String> {
        let t = Template::compile_in(text, escape, &mut WithRun).map_err(|e| e.message)?;
        let run = [
            RunValue::Scalar(b"adm in".to_vec()),
            RunValue::List(vec![b"s0".to_vec(), b"s1".to_vec(), b"s2".to_vec()]),
        ];
        let vars = [b"41".to_vec()];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut out = b"prefix:".to_vec();
        t.render(
            &mut RenderContext {
                vu: 7,
                iteration: 9,
                vars: &vars,
                rng: &mut rng,
                now_ms: 1_764_675_181_123,
                run: &run,
                body,
            },
            &mut out,
        )
        .map_err(|e| e.message().to_string())?;
        Ok(String::from_utf8(out).unwrap()[7..].to_string())
    }

    #[test]
    fn arithmetic_and_run_values() {
        let r = |t| render_with(t, Escape::Path, b"");
        assert_eq!(
            r("{{vu % 5}}/{{iteration + 1}}/{{(vu + 1) * 2 - 3}}").unwrap(),
            "2/10/13"
        );
        assert_eq!(r("{{-7 % 5}}").unwrap(), "3");
        assert_eq!(r("{{int(id) + 1}}").unwrap(), "42");
        assert_eq!(r("{{id + 1}}").unwrap(), "411");
        assert_eq!(r("{{run.token}}").unwrap(), "adm%20in");
        assert_eq!(r("{{run.sessions[vu % len(run.sessions)]}}").unwrap(), "s1");
        assert!(r("{{pick(run.sessions)}}").unwrap().starts_with('s'));
        assert_eq!(
            r("{{run.sessions[vu]}}").unwrap_err(),
            "a list index is out of range"
        );
        assert_eq!(
            r("{{vu % (iteration - 9)}}").unwrap_err(),
            "division by zero"
        );
        assert_eq!(
            r("{{vu * 9223372036854775807}}").unwrap_err(),
            "an integer overflowed"
        );
    }

    #[test]
    fn functions() {
        let r = |t| render_with(t, Escape::Header, b"{\"a\":1}");
        assert_eq!(
            r("Basic {{base64('user:pass')}}").unwrap(),
            "Basic dXNlcjpwYXNz"
        );
        assert_eq!(r("{{base64url('??>')}}").unwrap(), "Pz8-");
        assert_eq!(r("{{hex('AB')}}").unwrap(), "4142");
        assert_eq!(
            r("{{hex(sha256('abc'))}}").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            r("{{hex(hmac_sha256('Jefe', 'what do ya want for nothing?'))}}").unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A Stripe-style signature over the body.
        let sig = r("t={{now_s}},v1={{hex(hmac_sha256('k', str(now_s) + '.' + body))}}").unwrap();
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(b"k").unwrap();
        hmac::Mac::update(&mut mac, b"1764675181.{\"a\":1}");
        let want = hex::encode(hmac::Mac::finalize(mac).into_bytes());
        assert_eq!(sig, format!("t=1764675181,v1={want}"));
        assert_eq!(r("{{urlencode('a b&c')}}").unwrap(), "a+b%26c");
        assert_eq!(r("{{now_iso}}").unwrap(), "2025-12-02T11:33:01.123Z");
        let s = r("{{random_string(12)}}").unwrap();
        assert_eq!(s.len(), 12);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            r("{{env('LOADD_SURELY_UNSET_VAR', 'dflt')}}").unwrap(),
            "dflt"
        );
    }

    #[test]
    fn constant_expressions_are_folded() {
        let t = Template::compile_in(
            "Basic {{base64('a:b')}} {{2 * 3}}",
            Escape::Header,
            &mut WithRun,
        )
        .unwrap();
        assert_eq!(t.static_bytes(), Some(&b"Basic YTpi 6"[..]));
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = |t| {
            Template::compile_in(t, Escape::None, &mut WithRun)
                .unwrap_err()
                .message
        };
        assert!(e("{{sha256('x')}}").contains("hex("));
        assert!(e("{{id * 2}}").contains("int(name)"));
        assert!(e("{{run.sessions}}").contains("pick(run.sessions)"));
        assert!(e("{{run.token[0]}}").contains("not a list"));
        assert!(e("{{run.nope}}").contains("run.nope"));
        assert!(e("{{env('LOADD_SURELY_UNSET_VAR')}}").contains("not set"));
        assert!(e("{{bas64('x')}}").contains("base64"));
        assert!(e("{{9223372036854775807 + 1}}").contains("overflow"));
        assert!(e("{{random_string(100000000)}}").contains("length"));
        assert!(e("{{1 +}}").contains("expression"));
        assert!(e("{{(1 + 2}}").contains("expected `)`"));
        let no_body = Template::compile("{{body}}", Escape::None, &mut |_| Err(String::new()));
        assert!(no_body.unwrap_err().message.contains("headers"));
    }
}
