//! Following a redirect (`follow_redirects = N`): the next hop's request, rewritten from the
//! one just sent by the rules browsers and curl follow (RFC 9110 §15.4).
//!
//! A hop may only go to the run's target origin (same scheme, host and port): the connections,
//! the allowlist the daemon checked and the addresses all belong to it, so a redirect elsewhere is
//! refused and counted (`redirect`), never followed. 303 turns any method but HEAD into GET, and
//! 301/302 turn POST into GET, dropping the body and its framing headers; 307/308 resend the
//! request as it was.

use std::io::Write as _;

use url::Url;

use crate::proto::http1::MAX_HEADERS;

/// The statuses a step follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Why a redirect was not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectError {
    /// No `Location`, or one that is not a URL.
    BadLocation,
    /// The `Location` is on another origin than the target's.
    OtherOrigin,
}

/// Rewrites `request` (the hop just answered with `status` and `head`) into the next hop's.
/// `origin` is the target's (`http://host:port/`); `drop_cookie`: the request's `Cookie` header
/// came from the jar, which renders the next one itself. `scratch` is reused.
pub fn next_request(
    status: u16,
    head: &[u8],
    request: &mut Vec<u8>,
    origin: &Url,
    drop_cookie: bool,
    scratch: &mut Vec<u8>,
) -> Result<(), RedirectError> {
    let mut response_headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut response_headers);
    response
        .parse(head)
        .map_err(|_| RedirectError::BadLocation)?;
    let location = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("location"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .ok_or(RedirectError::BadLocation)?;

    let mut headers = [httparse::EMPTY_HEADER; 2 * MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(body_at)) = parsed.parse(request) else {
        return Err(RedirectError::BadLocation);
    };
    let method = parsed.method.unwrap_or("GET");
    let here = origin
        .join(parsed.path.unwrap_or("/"))
        .map_err(|_| RedirectError::BadLocation)?;
    let next = here
        .join(location.trim())
        .map_err(|_| RedirectError::BadLocation)?;
    if next.origin() != origin.origin() {
        return Err(RedirectError::OtherOrigin);
    }
    let to_get = match status {
        303 => method != "HEAD",
        301 | 302 => method == "POST",
        _ => false,
    };
    let method = if to_get { "GET" } else { method };

    scratch.clear();
    let _ = write!(scratch, "{method} {}", next.path());
    if let Some(q) = next.query() {
        let _ = write!(scratch, "?{q}");
    }
    scratch.extend_from_slice(b" HTTP/1.1\r\n");
    for h in parsed.headers.iter() {
        let framing = ["content-length", "content-type", "transfer-encoding"]
            .iter()
            .any(|n| h.name.eq_ignore_ascii_case(n));
        if (to_get && framing) || (drop_cookie && h.name.eq_ignore_ascii_case("cookie")) {
            continue;
        }
        scratch.extend_from_slice(h.name.as_bytes());
        scratch.extend_from_slice(b": ");
        scratch.extend_from_slice(h.value);
        scratch.extend_from_slice(b"\r\n");
    }
    scratch.extend_from_slice(b"\r\n");
    if !to_get {
        scratch.extend_from_slice(&request[body_at..]);
    }
    std::mem::swap(request, scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(status: u16, location: &str, request: &str) -> Result<String, RedirectError> {
        let head = format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\n\r\n");
        let mut req = request.as_bytes().to_vec();
        let origin = Url::parse("http://127.0.0.1:8080/").unwrap();
        next_request(
            status,
            head.as_bytes(),
            &mut req,
            &origin,
            true,
            &mut Vec::new(),
        )?;
        Ok(String::from_utf8(req).unwrap())
    }

    const POST: &str = "POST /login?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nCookie: old=1\r\nContent-Length: 2\r\n\r\n{}";

    #[test]
    fn methods_change_as_browsers_change_them() {
        assert_eq!(
            hop(302, "/home", POST).unwrap(),
            "GET /home HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        assert_eq!(
            hop(303, "next?a=b", POST).unwrap(),
            "GET /next?a=b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        assert_eq!(
            hop(307, "http://127.0.0.1:8080/again", POST).unwrap(),
            "POST /again HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        assert_eq!(
            hop(301, "/b", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n").unwrap(),
            "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        );
    }

    #[test]
    fn other_origins_and_bad_locations_are_refused() {
        for off in [
            "http://169.254.169.254/latest/meta-data",
            "https://127.0.0.1:8080/",
            "http://127.0.0.1:8081/",
            "//127.0.0.2:8080/x",
        ] {
            assert_eq!(
                hop(302, off, POST),
                Err(RedirectError::OtherOrigin),
                "{off}"
            );
        }
        assert_eq!(
            hop(302, "http://[::1", POST),
            Err(RedirectError::BadLocation)
        );
        let mut req = POST.as_bytes().to_vec();
        let origin = Url::parse("http://127.0.0.1:8080/").unwrap();
        let no_location = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            next_request(302, no_location, &mut req, &origin, false, &mut Vec::new()),
            Err(RedirectError::BadLocation)
        );
        assert_eq!(
            req,
            POST.as_bytes(),
            "a refused hop leaves the request alone"
        );
    }
}
