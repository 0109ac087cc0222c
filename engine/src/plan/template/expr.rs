//! The language inside `{{…}}`, parsed and type-checked once: integers and text, names,
//! built-ins, calls, integer arithmetic (`vu % 10`, `iteration + 1`) and `+` joining text
//! (`str + "." + body`, as in JavaScript).
//!
//! Every name is resolved here, so a template that compiles can fail at run time only on a
//! value: an index past a list's end, an overflow, a capture that is not a number. It refuses
//! what could only be a mistake: arithmetic on text, a raw digest printed as it is.

use super::{Names, RunRef};

/// Most characters `random_string(n)` makes.
pub(super) const MAX_RANDOM_STRING: i64 = 64 * 1024;

/// Why a value could not be rendered: the request is not sent, counted as a `template` error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderError {
    IndexOutOfRange,
    Overflow,
    DivideByZero,
    NotANumber,
    TooLong,
}

impl RenderError {
    pub fn message(self) -> &'static str {
        match self {
            RenderError::IndexOutOfRange => "a list index is out of range",
            RenderError::Overflow => "an integer overflowed",
            RenderError::DivideByZero => "division by zero",
            RenderError::NotANumber => "int(…) of text that is not an integer",
            RenderError::TooLong => "random_string's length is out of range",
        }
    }
}

/// One arithmetic step, checked.
pub(super) fn apply(op: Op, a: i64, b: i64) -> Result<i64, RenderError> {
    let r = match op {
        Op::Add => a.checked_add(b),
        Op::Sub => a.checked_sub(b),
        Op::Mul => a.checked_mul(b),
        Op::Div | Op::Rem if b == 0 => return Err(RenderError::DivideByZero),
        // Euclidean: `vu % 10` is never negative, so it is always a valid index.
        Op::Div => a.checked_div_euclid(b),
        Op::Rem => a.checked_rem_euclid(b),
    };
    r.ok_or(RenderError::Overflow)
}

/// What an expression yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    Int,
    Text,
    /// Digest bytes: only `hex`, `base64` and `base64url` may print them.
    Raw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Functions of one text argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Func {
    Base64,
    Base64Url,
    Hex,
    Sha256,
    UrlEncode,
    /// `int(x)`: text as an integer, for arithmetic on a captured number.
    Int,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expr {
    Int(i64),
    Text(Vec<u8>),
    Var(usize),
    /// A run-wide value from `[[setup]]`; `RunCount` holds a step's success count.
    Run(usize),
    RunCount(usize),
    RunItem(usize, Box<Expr>),
    RunPick(usize),
    RunLen(usize),
    Vu,
    Iteration,
    NowMs,
    /// Microseconds since the Unix epoch, read when rendered (a message's send time).
    NowUs,
    NowS,
    NowIso,
    Uuid,
    MsgId,
    /// The step's rendered body, for a signature header.
    Body,
    Random(i64, i64),
    Pick(Vec<Vec<u8>>),
    RandomString(Box<Expr>),
    Arith(Op, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>),
    Hmac(Box<Expr>, Box<Expr>),
}

impl Expr {
    pub(super) fn ty(&self) -> Ty {
        match self {
            Expr::Int(_)
            | Expr::RunCount(_)
            | Expr::RunLen(_)
            | Expr::Vu
            | Expr::Iteration
            | Expr::NowMs
            | Expr::NowUs
            | Expr::NowS
            | Expr::Random(..)
            | Expr::Arith(..)
            | Expr::Neg(_)
            | Expr::Call(Func::Int, _) => Ty::Int,
            Expr::Call(Func::Sha256, _) | Expr::Hmac(..) => Ty::Raw,
            _ => Ty::Text,
        }
    }

    /// True when it reads `{{body}}`.
    pub(super) fn reads_body(&self) -> bool {
        match self {
            Expr::Body => true,
            Expr::Arith(_, a, b) | Expr::Concat(a, b) | Expr::Hmac(a, b) => {
                a.reads_body() || b.reads_body()
            }
            Expr::Neg(a) | Expr::Call(_, a) | Expr::RandomString(a) | Expr::RunItem(_, a) => {
                a.reads_body()
            }
            _ => false,
        }
    }

    /// True when it renders the same every time, so it can be computed once at compile time.
    pub(super) fn is_const(&self) -> bool {
        match self {
            Expr::Int(_) | Expr::Text(_) => true,
            Expr::Arith(_, a, b) | Expr::Concat(a, b) | Expr::Hmac(a, b) => {
                a.is_const() && b.is_const()
            }
            Expr::Neg(a) | Expr::Call(_, a) => a.is_const(),
            _ => false,
        }
    }
}

/// Names that read the virtual user or the clock.
const PLAIN_BUILTINS: [(&str, Expr); 9] = [
    ("vu", Expr::Vu),
    ("iteration", Expr::Iteration),
    ("uuid", Expr::Uuid),
    ("msg_id", Expr::MsgId),
    ("now_ms", Expr::NowMs),
    ("now_us", Expr::NowUs),
    ("now_s", Expr::NowS),
    ("now_iso", Expr::NowIso),
    ("body", Expr::Body),
];

/// Parses one placeholder's text.
pub(super) fn parse(text: &str, names: &mut dyn Names) -> Result<Expr, String> {
    let mut p = Parser {
        src: text,
        pos: 0,
        names,
    };
    let e = p.sum()?;
    p.skip_space();
    if p.pos < p.src.len() {
        return Err(format!(
            "`{{{{{text}}}}}`: unexpected `{}` at character {}",
            &p.src[p.pos..],
            p.pos + 1
        ));
    }
    Ok(e)
}

struct Parser<'a, 'n> {
    src: &'a str,
    pos: usize,
    names: &'n mut dyn Names,
}

impl Parser<'_, '_> {
    fn skip_space(&mut self) {
        while self.src[self.pos..].starts_with(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.src.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at character {} of `{}`",
                byte as char,
                self.pos + 1,
                self.src
            ))
        }
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Some(b'+') => Op::Add,
                Some(b'-') => Op::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.product()?;
            left = if op == Op::Add && (left.ty() != Ty::Int || right.ty() != Ty::Int) {
                for side in [&left, &right] {
                    if side.ty() == Ty::Raw {
                        return Err(raw_digest());
                    }
                }
                Expr::Concat(Box::new(left), Box::new(right))
            } else {
                arith(op, left, right)?
            };
        }
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(b'*') => Op::Mul,
                Some(b'/') => Op::Div,
                Some(b'%') => Op::Rem,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = arith(op, left, right)?;
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat(b'-') {
            let e = self.unary()?;
            if e.ty() != Ty::Int {
                return Err(not_a_number("-", &e));
            }
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let e = self.sum()?;
                self.expect(b')')?;
                Ok(e)
            }
            Some(q @ (b'"' | b'\'')) => {
                let rest = &self.src[self.pos + 1..];
                let Some(end) = rest.find(q as char) else {
                    return Err(format!(
                        "a string in `{}` has no closing {}",
                        self.src, q as char
                    ));
                };
                self.pos += end + 2;
                Ok(Expr::Text(rest.as_bytes()[..end].to_vec()))
            }
            Some(b'0'..=b'9') => {
                let digits = self.take_while(|c| c.is_ascii_digit());
                digits
                    .parse()
                    .map(Expr::Int)
                    .map_err(|_| format!("`{digits}` is too large for a 64-bit integer"))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.name(),
            _ => Err(format!(
                "`{{{{{}}}}}` is not a variable name, a built-in or an expression",
                self.src
            )),
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        let len = self.src[start..]
            .find(|c| !f(c))
            .unwrap_or(self.src.len() - start);
        self.pos += len;
        &self.src[start..start + len]
    }

    /// A name, `a.b`, a call `f(…)` or an index `run.list[…]`.
    fn name(&mut self) -> Result<Expr, String> {
        let name = self
            .take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            .to_owned();
        if self.peek() == Some(b'(') {
            return self.call(&name);
        }
        if let Some(run) = name.strip_prefix("run.") {
            let slot = self.names.run(run)?;
            if self.eat(b'[') {
                let index = self.sum()?;
                self.expect(b']')?;
                return match slot {
                    RunRef::List(i) if index.ty() == Ty::Int => {
                        Ok(Expr::RunItem(i, Box::new(index)))
                    }
                    RunRef::List(_) => Err(not_a_number("a list index", &index)),
                    RunRef::Scalar(_) => Err(format!(
                        "`run.{run}` is one value, not a list: it has no [index]"
                    )),
                };
            }
            return match slot {
                RunRef::Scalar(i) => Ok(Expr::Run(i)),
                RunRef::List(_) => Err(format!(
                    "`run.{run}` is a list: take one item with run.{run}[vu % len(run.{run})] or pick(run.{run})"
                )),
            };
        }
        if let Some((_, e)) = PLAIN_BUILTINS.iter().find(|(n, _)| *n == name) {
            if *e == Expr::Body && !self.names.body_allowed() {
                return Err(
                    "`{{body}}` is the step's request body: only a step's headers can use it"
                        .into(),
                );
            }
            return Ok(e.clone());
        }
        let valid = match name.split_once('.') {
            None => super::is_identifier(&name),
            Some((a, b)) => super::is_identifier(a) && super::is_identifier(b),
        };
        if !valid {
            return Err(format!("`{name}` is not a variable name or a built-in"));
        }
        self.names.var(&name).map(Expr::Var)
    }

    fn call(&mut self, name: &str) -> Result<Expr, String> {
        self.pos += 1; // `(`
        match name {
            // Kept as they always were: literal arguments, split at commas.
            "random" | "pick" => return self.literal_call(name),
            "env" => return self.env(),
            "len" => {
                let raw = self.take_while(|c| c != ')').trim().to_owned();
                self.expect(b')')?;
                let list = raw.strip_prefix("run.").map(|l| (l, self.names.run(l)));
                return match list {
                    Some((_, Ok(RunRef::List(i)))) => Ok(Expr::RunLen(i)),
                    Some((_, Err(e))) => Err(e),
                    _ => Err(format!(
                        "len(…) takes a run-wide list, e.g. len(run.sessions), not `{raw}`"
                    )),
                };
            }
            "run.count" => {
                let step = self.take_while(|c| c != ')').trim().to_owned();
                self.expect(b')')?;
                return self.names.count(&step).map(Expr::RunCount);
            }
            _ => {}
        }
        let mut args = Vec::new();
        if !self.eat(b')') {
            loop {
                args.push(self.sum()?);
                if self.eat(b')') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        let one = |f: Func, mut args: Vec<Expr>| -> Result<Expr, String> {
            match (args.pop(), args.is_empty()) {
                (Some(a), true) => {
                    let raw_ok = matches!(f, Func::Base64 | Func::Base64Url | Func::Hex);
                    if a.ty() == Ty::Raw && !raw_ok {
                        return Err(raw_digest());
                    }
                    Ok(Expr::Call(f, Box::new(a)))
                }
                _ => Err(format!("{name}(…) takes one argument")),
            }
        };
        match name {
            "base64" => one(Func::Base64, args),
            "base64url" => one(Func::Base64Url, args),
            "hex" => one(Func::Hex, args),
            "sha256" => one(Func::Sha256, args),
            "urlencode" => one(Func::UrlEncode, args),
            "int" => one(Func::Int, args),
            "str" => match <[Expr; 1]>::try_from(args) {
                // Text of an integer: `+` then joins instead of adding.
                Ok([a]) if a.ty() == Ty::Int => {
                    Ok(Expr::Concat(Box::new(Expr::Text(Vec::new())), Box::new(a)))
                }
                Ok([a]) if a.ty() == Ty::Text => Ok(a),
                _ => Err("str(…) takes one integer or text argument".into()),
            },
            "hmac_sha256" => match <[Expr; 2]>::try_from(args) {
                Ok([k, m]) if k.ty() != Ty::Raw && m.ty() != Ty::Raw => {
                    Ok(Expr::Hmac(Box::new(k), Box::new(m)))
                }
                Ok(_) => Err(raw_digest()),
                Err(_) => Err("hmac_sha256(key, message) takes two arguments".into()),
            },
            "random_string" => match <[Expr; 1]>::try_from(args) {
                Ok([Expr::Int(n)]) if !(0..=MAX_RANDOM_STRING).contains(&n) => Err(format!(
                    "random_string({n}): the length must be 0 to {MAX_RANDOM_STRING}"
                )),
                Ok([n]) if n.ty() == Ty::Int => Ok(Expr::RandomString(Box::new(n))),
                _ => Err("random_string(n) takes one integer, e.g. random_string(16)".into()),
            },
            "now_ms" | "now_us" | "now_s" | "now_iso" | "uuid" if args.is_empty() => {
                Ok(PLAIN_BUILTINS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(Expr::Uuid, |(_, e)| e.clone()))
            }
            other => {
                let hint = crate::plan::checker::did_you_mean(other, super::FUNCTIONS);
                Err(format!("`{other}(…)` is not a function{hint}"))
            }
        }
    }

    /// `random(a, b)` and `pick(a, b, …)` take literal arguments; `pick(run.list)` a list.
    fn literal_call(&mut self, name: &str) -> Result<Expr, String> {
        let raw = self.take_while(|c| c != ')').to_owned();
        self.expect(b')')?;
        let expr = format!("{name}({raw})");
        if name == "random" {
            let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
            let parsed: Option<Vec<i64>> = parts.iter().map(|p| p.parse().ok()).collect();
            return match parsed.as_deref() {
                Some([lo, hi]) if lo <= hi => Ok(Expr::Random(*lo, *hi)),
                _ => Err(format!(
                    "`{{{{{expr}}}}}`: random takes two integers, low ≤ high, e.g. {{{{random(1,100)}}}}"
                )),
            };
        }
        if let Some(list) = raw.trim().strip_prefix("run.") {
            return match self.names.run(list)? {
                RunRef::List(i) => Ok(Expr::RunPick(i)),
                RunRef::Scalar(_) => Err(format!("`run.{list}` is one value: pick needs a list")),
            };
        }
        let choices: Vec<Vec<u8>> = raw
            .split(',')
            .map(|c| {
                c.trim()
                    .trim_matches(|q| q == '"' || q == '\'')
                    .as_bytes()
                    .to_vec()
            })
            .filter(|c| !c.is_empty())
            .collect();
        if choices.is_empty() {
            return Err(format!(
                "`{{{{{expr}}}}}`: pick needs at least one choice, e.g. {{{{pick(a,b,c)}}}}"
            ));
        }
        Ok(Expr::Pick(choices))
    }

    /// `env("NAME")` or `env("NAME", "default")`: read when the plan is built.
    fn env(&mut self) -> Result<Expr, String> {
        let mut args = Vec::new();
        loop {
            match self.primary()? {
                Expr::Text(t) => args.push(String::from_utf8_lossy(&t).into_owned()),
                _ => {
                    return Err(
                        "env(\"NAME\") takes a quoted name and an optional quoted default".into(),
                    )
                }
            }
            if self.eat(b')') {
                break;
            }
            self.expect(b',')?;
        }
        match args.as_slice() {
            [name] => super::env::lookup(name).map(|v| Expr::Text(v.into_bytes())).ok_or_else(|| {
                format!("environment variable `{name}` is not set: set it, or give a default, env(\"{name}\", \"…\")")
            }),
            [name, default] => Ok(Expr::Text(
                super::env::lookup(name).unwrap_or_else(|| default.clone()).into_bytes(),
            )),
            _ => Err("env takes a name and an optional default".into()),
        }
    }
}

fn arith(op: Op, left: Expr, right: Expr) -> Result<Expr, String> {
    let sym = match op {
        Op::Add => "+",
        Op::Sub => "-",
        Op::Mul => "*",
        Op::Div => "/",
        Op::Rem => "%",
    };
    for side in [&left, &right] {
        if side.ty() != Ty::Int {
            return Err(not_a_number(sym, side));
        }
    }
    if let (Expr::Int(a), Expr::Int(b)) = (&left, &right) {
        return apply(op, *a, *b)
            .map(Expr::Int)
            .map_err(|e| format!("{a} {sym} {b}: {}", e.message()));
    }
    Ok(Expr::Arith(op, Box::new(left), Box::new(right)))
}

fn not_a_number(what: &str, e: &Expr) -> String {
    let hint = match e {
        Expr::Var(_) | Expr::Run(_) | Expr::RunItem(..) => {
            ": a captured value is text; int(name) reads it as a number"
        }
        _ => "",
    };
    format!("`{what}` needs integers, and this side is text{hint}")
}

fn raw_digest() -> String {
    "sha256 and hmac_sha256 give raw bytes: print them with hex(…), base64(…) or base64url(…)"
        .into()
}
