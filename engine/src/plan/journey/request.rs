//! A step's request: method, path, headers and body (text, JSON, a form, a file or a generated
//! upload) compiled into templates, or into bytes encoded once when nothing in it varies.
//!
//! It decides the framing headers (`Host`, `Content-Length`, `Content-Type`) the user did not
//! write; it does not render anything per request (`StepRequest::encode` does).

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::scope::StepContext;
use crate::plan::journey::{StepRequest, Upload, BOUNDARY};
use crate::plan::template::{form_encode, Escape, RenderContext, Template};
use crate::proto::http1;
use crate::scenario::{StepSpec, UploadSpec};
use crate::units;

/// The request of a step whose method is `method` (upper-cased).
pub(super) fn compile_request(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    s: &StepSpec,
    method: &str,
    compressed: bool,
) -> StepRequest {
    let path_text = s.path.get_ref();
    if !path_text.starts_with('/') {
        c.error(
            &s.path.span(),
            format!("path `{path_text}` must start with `/`"),
        );
    }
    let path = cx.template(c, path_text, s.path.span(), Escape::Path);
    let (mut headers, user_header_names) = compile_headers(c, cx, s);
    let writes_encoding = user_header_names.iter().any(|n| n == "accept-encoding")
        || cx
            .base
            .default_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"));
    if compressed && !writes_encoding {
        headers.push(Template::literal(
            &format!(
                "Accept-Encoding: {}",
                crate::client::decode::ACCEPT_ENCODING
            ),
            Escape::None,
        ));
    }
    let body = compile_body(c, cx, s, &mut headers, &user_header_names);
    let upload = compile_step_upload(c, cx, s, &mut headers, &user_header_names);
    let has = |n: &str| {
        user_header_names.iter().any(|h| h == n)
            || cx
                .base
                .default_headers
                .iter()
                .any(|(h, _)| h.eq_ignore_ascii_case(n))
    };
    let content_length =
        (body.is_some() || upload.is_some() || matches!(method, "POST" | "PUT" | "PATCH"))
            && !has("content-length")
            && !has("transfer-encoding");
    let host = if has("host") {
        String::new()
    } else {
        format!("Host: {}\r\n", cx.base.host_header)
    };
    freeze_if_static(StepRequest::Dynamic {
        start: format!("{method} {}", cx.base.base_path.trim_end_matches('/')).into_bytes(),
        path: path.unwrap_or_else(|| Template::literal("", Escape::None)),
        after_path: format!(" HTTP/1.1\r\n{host}").into_bytes(),
        headers,
        body,
        upload,
        content_length,
    })
}

/// The `[request]` headers, then the step's own; with the lower-case names the step gave.
fn compile_headers(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    s: &StepSpec,
) -> (Vec<Template>, Vec<String>) {
    let mut headers: Vec<Template> = cx
        .base
        .default_headers
        .iter()
        .filter_map(|(n, v)| cx.template(c, &format!("{n}: {v}"), 0..0, Escape::Header))
        .collect();
    let mut user_header_names = Vec::new();
    for h in &s.headers {
        match h.get_ref().split_once(':') {
            Some((n, _)) if http1::validate_header(n.trim(), "").is_ok() => {
                user_header_names.push(n.trim().to_ascii_lowercase());
                if let Some(t) = cx.header_template(c, h.get_ref(), h.span()) {
                    headers.push(t);
                }
            }
            _ => c.error(
                &h.span(),
                format!(
                    "header `{}` must be written \"Name: value\" with a literal name",
                    h.get_ref()
                ),
            ),
        }
    }
    (headers, user_header_names)
}

/// Adds `Content-Type: {value}` unless the step wrote its own.
fn default_content_type(headers: &mut Vec<Template>, user_header_names: &[String], value: &str) {
    if !user_header_names.iter().any(|n| n == "content-type") {
        headers.push(Template::literal(
            &format!("Content-Type: {value}"),
            Escape::None,
        ));
    }
}

/// `body`, `json`, `form` or `body_file`: at most one.
fn compile_body(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    s: &StepSpec,
    headers: &mut Vec<Template>,
    user_header_names: &[String],
) -> Option<Template> {
    if let Some(f) = &s.body_file {
        if s.body.is_some() || s.json.is_some() || s.form.is_some() {
            c.error(&f.span(), "give one of body, json, form or body_file");
        }
    }
    match (&s.body, &s.json) {
        _ if s.form.is_some() => {
            let form = s.form.as_ref().map(Spanned::get_ref);
            let span = s.form.as_ref().map_or(0..0, Spanned::span);
            if s.body.is_some() || s.json.is_some() {
                c.error(&span, "give one of body, json or form");
            }
            default_content_type(
                headers,
                user_header_names,
                "application/x-www-form-urlencoded",
            );
            let text = form_template_text(form.into_iter().flatten());
            cx.template(c, &text, span, Escape::Form)
        }
        (Some(b), Some(_)) => {
            c.error(&b.span(), "give either body or json, not both");
            None
        }
        (Some(b), None) => cx.template(c, b.get_ref(), b.span(), Escape::None),
        (None, Some(j)) => match serde_json::to_string(j.get_ref()) {
            Ok(text) => {
                default_content_type(headers, user_header_names, "application/json");
                cx.template(c, &text, j.span(), Escape::JsonString)
            }
            Err(e) => {
                c.error(&j.span(), format!("json body cannot be encoded: {e}"));
                None
            }
        },
        (None, None) => match &s.body_file {
            Some(f) => match cx.base.source.read_file(f.get_ref()) {
                Ok(bytes) => Some(Template::bytes(bytes)),
                Err(e) => {
                    c.error(&f.span(), format!("body_file: {e}"));
                    None
                }
            },
            None => None,
        },
    }
}

/// `upload`, which excludes every other body.
fn compile_step_upload(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    s: &StepSpec,
    headers: &mut Vec<Template>,
    user_header_names: &[String],
) -> Option<Box<Upload>> {
    let u = s.upload.as_ref()?;
    if s.body.is_some() || s.json.is_some() || s.form.is_some() || s.body_file.is_some() {
        c.error(&u.span(), "give one of body, json or upload");
        return None;
    }
    let filename = u.get_ref().filename.as_deref().unwrap_or("upload.bin");
    let filename = cx.template(c, filename, u.span(), Escape::Header)?;
    let up = compile_upload(c, u, filename)?;
    default_content_type(
        headers,
        user_header_names,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
    );
    Some(Box::new(up))
}

/// `k1=v1&k2=v2` with keys and literal text encoded now, and `{{…}}` left for the template
/// (whose values are encoded when rendered).
fn form_template_text<'a>(fields: impl Iterator<Item = (&'a String, &'a toml::Value)>) -> String {
    let mut out = Vec::new();
    for (i, (key, value)) in fields.enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        form_encode(key.as_bytes(), &mut out);
        out.push(b'=');
        let text = match value {
            toml::Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        let mut rest = text.as_str();
        while let Some(open) = rest.find("{{") {
            form_encode(&rest.as_bytes()[..open], &mut out);
            let close = rest[open..].find("}}").map_or(rest.len(), |c| open + c + 2);
            out.extend_from_slice(&rest.as_bytes()[open..close]);
            rest = &rest[close..];
        }
        form_encode(rest.as_bytes(), &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request whose every template is static is encoded once.
fn freeze_if_static(request: StepRequest) -> StepRequest {
    let all_static = match &request {
        StepRequest::Static(_) => true,
        StepRequest::Dynamic {
            path,
            headers,
            body,
            upload,
            ..
        } => {
            upload.is_none()
                && path.is_static()
                && headers.iter().all(Template::is_static)
                && body.as_ref().is_none_or(Template::is_static)
        }
    };
    if !all_static {
        return request;
    }
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
    let (mut out, mut scratch) = (Vec::new(), Vec::new());
    // Static templates cannot fail.
    if request.encode(&mut cx, &mut out, &mut scratch).is_err() {
        return request;
    }
    StepRequest::Static(out)
}

/// Largest generated upload.
const MAX_UPLOAD: u64 = 64 * 1024 * 1024;

fn compile_upload(
    c: &mut Checker<'_>,
    u: &Spanned<UploadSpec>,
    filename: Template,
) -> Option<Upload> {
    let spec = u.get_ref();
    let mut sizes = Vec::new();
    match (&spec.size, &spec.sizes) {
        (Some(one), None) => sizes.push((1, one.as_str())),
        (None, Some(mix)) if !mix.is_empty() => {
            sizes.extend(mix.iter().map(|m| (m.weight, m.size.as_str())))
        }
        _ => {
            c.error(
                &u.span(),
                "upload needs size = \"200KB\" or sizes = [{ size = \"50KB\", weight = 26 }, …]",
            );
            return None;
        }
    }
    let mut parsed = Vec::with_capacity(sizes.len());
    for (weight, text) in sizes {
        match units::parse_bytes(text) {
            Ok(n) if n <= MAX_UPLOAD => parsed.push((weight, n as usize)),
            Ok(_) => c.error(
                &u.span(),
                format!("upload size `{text}` is over the 64 MiB limit"),
            ),
            Err(e) => c.error(&u.span(), format!("upload size: {e}")),
        }
    }
    if parsed.iter().all(|(w, _)| *w == 0) {
        c.error(&u.span(), "upload sizes all have weight 0");
        return None;
    }
    let largest = parsed.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let field = spec.field.as_deref().unwrap_or("file");
    let content_type = spec
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    Some(Upload {
        start: format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\""
        )
        .into_bytes(),
        filename,
        after_filename: format!("\"\r\nContent-Type: {content_type}\r\n\r\n").into_bytes(),
        sizes: parsed,
        // Letters only: the boundary (which has dashes) can never occur inside.
        payload: (0..largest).map(|i| b'a' + (i % 26) as u8).collect(),
    })
}
