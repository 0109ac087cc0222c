//! Page loads: `/pages/{name}` and the assets it references, with `ETag` revalidation.

use super::{connect, get, sandbox};

#[test]
fn page_and_assets_load_and_revalidate() {
    let sandbox = sandbox();
    let page = get(&sandbox, "/pages/home");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.body.len(), 8 << 10);
    let html = String::from_utf8(page.body.clone()).expect("utf-8 page");
    let assets = [
        ("/static/app.js", "text/javascript", 60 << 10),
        ("/static/style.css", "text/css", 15 << 10),
        ("/static/logo.png", "image/png", 30 << 10),
    ];
    let mut client = connect(&sandbox);
    for (path, content_type, len) in assets {
        assert!(html.contains(path), "the page references {path}");
        let reply = client.request("GET", path, "");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some(content_type));
        assert_eq!(reply.body.len(), len);
        assert!(reply.header("cache-control").is_some());
        let etag = reply.header("etag").expect("an ETag");
        let revalidated = client.request_with("GET", path, &[("if-none-match", etag)], b"");
        assert_eq!(revalidated.status, 304);
        assert_eq!(revalidated.header("etag"), Some(etag));
    }

    let etag = page.header("etag").expect("an ETag");
    let other_page = client.request_with("GET", "/pages/about", &[("if-none-match", etag)], b"");
    assert_eq!(other_page.status, 304);
    let stale = client.request_with("GET", "/pages/home", &[("if-none-match", "\"stale\"")], b"");
    assert_eq!(stale.status, 200);
    assert_eq!(client.request("GET", "/static/nope.js", "").status, 404);
    // 1 page + 3 × (asset + revalidation) + 2 pages + 1 404.
    assert_eq!(sandbox.requests(), 10);
}
