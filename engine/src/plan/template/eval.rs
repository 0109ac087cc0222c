//! Evaluating a parsed expression per request, onto the caller's buffer.
//!
//! Text is appended to `out`; a function rewrites what its argument appended (its output goes
//! after the argument, then moves down over it), so nesting needs no buffer of its own and a
//! request allocates nothing once `out` has grown. Integers stay on the stack.

use std::io::Write as _;

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use sha2::Digest as _;

use super::expr::{apply, Expr, Func, RenderError, MAX_RANDOM_STRING};
use super::{RenderContext, RunValue};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Expr {
    pub(super) fn eval_int(
        &self,
        cx: &mut RenderContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<i64, RenderError> {
        Ok(match self {
            Expr::Int(n) => *n,
            Expr::Vu => cx.vu as i64,
            Expr::Iteration => cx.iteration as i64,
            Expr::NowMs => cx.now_ms as i64,
            Expr::NowUs => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64),
            Expr::NowS => (cx.now_ms / 1000) as i64,
            Expr::Random(lo, hi) => cx.rng.i64(*lo..=*hi),
            Expr::RunLen(slot) => match cx.run.get(*slot) {
                Some(RunValue::List(items)) => items.len() as i64,
                _ => 0,
            },
            Expr::Arith(op, a, b) => {
                let a = a.eval_int(cx, out)?;
                let b = b.eval_int(cx, out)?;
                apply(*op, a, b)?
            }
            Expr::Neg(a) => a
                .eval_int(cx, out)?
                .checked_neg()
                .ok_or(RenderError::Overflow)?,
            // Text read as a number: rendered onto `out`, parsed, taken back off.
            Expr::Call(Func::Int, a) => {
                let start = out.len();
                a.eval_text(cx, out)?;
                read_int(out, start)?
            }
            Expr::RunCount(slot) => {
                let start = out.len();
                push_run(cx, *slot, out);
                read_int(out, start)?
            }
            _ => return Err(RenderError::NotANumber),
        })
    }

    /// Appends the expression's bytes (unescaped) to `out`.
    pub(super) fn eval_text(
        &self,
        cx: &mut RenderContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        match self {
            Expr::Text(t) => out.extend_from_slice(t),
            Expr::Var(i) => out.extend_from_slice(cx.vars.get(*i).map_or(&[][..], Vec::as_slice)),
            Expr::Run(slot) => push_run(cx, *slot, out),
            Expr::RunItem(slot, index) => {
                let i = index.eval_int(cx, out)?;
                let item = match cx.run.get(*slot) {
                    Some(RunValue::List(items)) => {
                        usize::try_from(i).ok().and_then(|i| items.get(i))
                    }
                    _ => None,
                };
                out.extend_from_slice(item.ok_or(RenderError::IndexOutOfRange)?);
            }
            Expr::RunPick(slot) => {
                let Some(RunValue::List(items)) = cx.run.get(*slot) else {
                    return Err(RenderError::IndexOutOfRange);
                };
                if items.is_empty() {
                    return Err(RenderError::IndexOutOfRange);
                }
                out.extend_from_slice(&items[cx.rng.usize(..items.len())]);
            }
            Expr::Uuid => write_uuid(cx.rng, out),
            Expr::MsgId => super::write_msg_id(out, cx.vu, cx.iteration),
            Expr::NowIso => {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(cx.now_ms);
                let _ = write!(out, "{}", humantime::format_rfc3339_millis(at));
            }
            Expr::Body => out.extend_from_slice(cx.body),
            Expr::Pick(choices) => out.extend_from_slice(&choices[cx.rng.usize(..choices.len())]),
            Expr::RandomString(n) => {
                let n = n.eval_int(cx, out)?;
                if !(0..=MAX_RANDOM_STRING).contains(&n) {
                    return Err(RenderError::TooLong);
                }
                for _ in 0..n {
                    out.push(ALPHANUMERIC[cx.rng.usize(..ALPHANUMERIC.len())]);
                }
            }
            Expr::Concat(a, b) => {
                a.eval_text(cx, out)?;
                b.eval_text(cx, out)?;
            }
            Expr::Call(f, a) if *f != Func::Int => {
                let start = out.len();
                a.eval_text(cx, out)?;
                transform(*f, out, start);
            }
            Expr::Hmac(key, message) => {
                let start = out.len();
                key.eval_text(cx, out)?;
                let split = out.len();
                message.eval_text(cx, out)?;
                let digest = match HmacSha256::new_from_slice(&out[start..split]) {
                    Ok(mut mac) => {
                        mac.update(&out[split..]);
                        mac.finalize().into_bytes()
                    }
                    // HMAC takes keys of any length; this arm is never taken.
                    Err(_) => Default::default(),
                };
                out.truncate(start);
                out.extend_from_slice(&digest);
            }
            // Integers print in decimal.
            _ => {
                let n = self.eval_int(cx, out)?;
                let _ = write!(out, "{n}");
            }
        }
        Ok(())
    }
}

fn read_int(out: &mut Vec<u8>, start: usize) -> Result<i64, RenderError> {
    let n = std::str::from_utf8(&out[start..])
        .ok()
        .and_then(|s| s.trim().parse().ok());
    out.truncate(start);
    n.ok_or(RenderError::NotANumber)
}

fn push_run(cx: &RenderContext<'_>, slot: usize, out: &mut Vec<u8>) {
    if let Some(RunValue::Scalar(v)) = cx.run.get(slot) {
        out.extend_from_slice(v);
    }
}

/// Replaces `out[start..]` with `f` of it: the result is written after the input, then moved
/// down over it.
fn transform(f: Func, out: &mut Vec<u8>, start: usize) {
    let end = out.len();
    match f {
        Func::Sha256 => {
            let digest = sha2::Sha256::digest(&out[start..]);
            out.truncate(start);
            out.extend_from_slice(&digest);
            return;
        }
        Func::Base64 | Func::Base64Url => {
            let engine = if f == Func::Base64 {
                &base64::engine::general_purpose::STANDARD
            } else {
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
            };
            let n = base64::encoded_len(end - start, f == Func::Base64).unwrap_or(0);
            out.resize(end + n, 0);
            let (input, output) = out.split_at_mut(end);
            let written = engine.encode_slice(&input[start..], output).unwrap_or(0);
            out.truncate(end + written);
        }
        Func::Hex => {
            out.resize(end + 2 * (end - start), 0);
            let (input, output) = out.split_at_mut(end);
            let _ = hex::encode_to_slice(&input[start..], output);
        }
        Func::UrlEncode => {
            for i in start..end {
                let b = out[i];
                super::form_encode(&[b], out);
            }
        }
        Func::Int => return,
    }
    out.copy_within(end.., start);
    out.truncate(out.len() - (end - start));
}

/// Version 4, variant 1.
pub(super) fn write_uuid(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    let mut u = rng.u128(..).to_be_bytes();
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    for (i, byte) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        let _ = write!(out, "{byte:02x}");
    }
}
