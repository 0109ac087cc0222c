//! A virtual user's cookie jar: what `Set-Cookie` stored, sent back in a `Cookie` header by the
//! rules of RFC 6265 (domain, path, expiry, `Secure`), as the `cookie_store` crate applies them.
//!
//! A jar lives as long as its user, across iterations (Locust's sessions; a `once` login's session
//! cookie must outlast the iteration that set it). It is made on the first `Set-Cookie`, so a
//! journey whose target sets none pays nothing. Requests are rendered as HTTP/1.1 bytes whatever
//! the protocol, so the header is spliced into those bytes; a step that writes its own `Cookie`
//! header sends that one alone.

use std::io::Write as _;

use cookie_store::CookieStore;
use url::Url;

use crate::proto::http1::MAX_HEADERS;

/// One user's cookies, and the origin their requests go to.
pub struct Jar {
    store: CookieStore,
    origin: Url,
}

impl Jar {
    /// A jar for requests to `origin` (`http://host:port/`); `None` if that is not a URL.
    pub fn new(origin: &str) -> Option<Jar> {
        Some(Jar {
            store: CookieStore::new(),
            origin: Url::parse(origin).ok()?,
        })
    }

    /// Keeps every cookie a response's head sets, for the request whose bytes are `request`.
    pub fn store_from(&mut self, head: &[u8], request: &[u8]) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        if response.parse(head).is_err() {
            return;
        }
        let mut set = response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .peekable();
        if set.peek().is_none() {
            return;
        }
        let Some(url) = self.url_of(request) else {
            return;
        };
        for value in set {
            // A cookie the rules refuse (another domain, a bad attribute) is dropped, as a
            // browser drops it.
            let _ = self.store.parse(value, &url);
        }
    }

    /// Adds a `Cookie` header of the cookies that match `request` to its head, unless it has
    /// one. `scratch` is reused for the header line.
    pub fn add_to(&self, request: &mut Vec<u8>, scratch: &mut Vec<u8>) {
        if self.store.iter_unexpired().next().is_none() {
            return;
        }
        let Some(head_end) = memchr::memmem::find(request, b"\r\n\r\n") else {
            return;
        };
        if has_cookie_header(&request[..head_end]) {
            return;
        }
        let Some(url) = self.url_of(request) else {
            return;
        };
        scratch.clear();
        for (i, (name, value)) in self.store.get_request_values(&url).enumerate() {
            let sep = if i == 0 { "Cookie: " } else { "; " };
            let _ = write!(scratch, "{sep}{name}={value}");
        }
        if scratch.is_empty() {
            return;
        }
        scratch.extend_from_slice(b"\r\n");
        // After the last header line's CRLF, before the blank line.
        let at = head_end + 2;
        request.splice(at..at, scratch.iter().copied());
    }

    /// The URL a request goes to: the origin joined with the path of its request line.
    fn url_of(&self, request: &[u8]) -> Option<Url> {
        let line_end = memchr::memchr(b'\r', request)?;
        let mut parts = request[..line_end].split(|&b| b == b' ');
        let target = std::str::from_utf8(parts.nth(1)?).ok()?;
        self.origin.join(target).ok()
    }
}

/// A response head sets a cookie (a jar is made for it only then).
pub fn sets_cookie(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() > 11 && line[..11].eq_ignore_ascii_case(b"set-cookie:"))
}

/// The head (without its blank line) already has a `Cookie` field.
fn has_cookie_header(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() > 7 && line[..7].eq_ignore_ascii_case(b"cookie:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(set_cookies: &[&str]) -> Vec<u8> {
        let mut head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n".to_vec();
        for c in set_cookies {
            head.extend_from_slice(format!("Set-Cookie: {c}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    fn sent(jar: &Jar, path: &str) -> String {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: shop.test\r\n\r\n").into_bytes();
        jar.add_to(&mut req, &mut Vec::new());
        String::from_utf8(req).unwrap()
    }

    #[test]
    fn path_domain_expiry_and_secure_rules_hold() {
        let mut jar = Jar::new("http://shop.test/").unwrap();
        let login = b"POST /account/login HTTP/1.1\r\nHost: shop.test\r\n\r\n";
        jar.store_from(
            &response(&[
                "sid=abc; Path=/",
                "cart=7; Path=/cart",
                "gone=1; Max-Age=0",
                "other=1; Domain=elsewhere.test",
                "tls=1; Secure",
            ]),
            login,
        );
        assert_eq!(cookies(&sent(&jar, "/cart/items")), ["cart=7", "sid=abc"]);
        let root = sent(&jar, "/");
        assert_eq!(cookies(&root), ["sid=abc"]);
        assert!(root.ends_with("\r\nCookie: sid=abc\r\n\r\n"), "{root}");
    }

    /// The pairs of the request's `Cookie` header, sorted.
    fn cookies(request: &str) -> Vec<String> {
        let line = request
            .lines()
            .find_map(|l| l.strip_prefix("Cookie: "))
            .unwrap_or_default();
        let mut pairs: Vec<String> = line
            .split("; ")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn secure_cookies_go_over_https_only() {
        let mut jar = Jar::new("https://shop.test/").unwrap();
        jar.store_from(&response(&["tls=1; Secure"]), b"GET / HTTP/1.1\r\n\r\n");
        assert!(sent(&jar, "/").contains("Cookie: tls=1"));
    }

    #[test]
    fn an_explicit_cookie_header_wins_and_an_empty_jar_adds_nothing() {
        let mut jar = Jar::new("http://shop.test/").unwrap();
        assert_eq!(sent(&jar, "/"), "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n");
        jar.store_from(&response(&["sid=abc"]), b"GET / HTTP/1.1\r\n\r\n");
        let mut req = b"GET / HTTP/1.1\r\nCookie: mine=1\r\n\r\nbody".to_vec();
        jar.add_to(&mut req, &mut Vec::new());
        assert_eq!(req, b"GET / HTTP/1.1\r\nCookie: mine=1\r\n\r\nbody");
        let mut req = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody".to_vec();
        jar.add_to(&mut req, &mut Vec::new());
        assert_eq!(
            req,
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nCookie: sid=abc\r\n\r\nbody"
        );
    }
}
