//! `POST /api/t/{t}/uploads` with hand-built multipart bodies.

use serde_json::json;

use super::{connect, sandbox, Client};

const BOUNDARY: &str = "loadd-test-boundary";

/// A multipart/form-data body: a text part, then a `file` part of `len` bytes.
fn multipart_body(filename: &str, len: usize) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"title\"\r\n\r\nmy recording\r\n\
         --{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         content-type: audio/mpeg\r\n\r\n"
    )
    .into_bytes();
    body.resize(body.len() + len, b'a');
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn upload(client: &mut Client, token: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let authorization = format!("Bearer {token}");
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", content_type.as_str()),
    ];
    let reply = client.request_with("POST", "/api/t/acme/uploads", &headers, body);
    let json = serde_json::from_slice(&reply.body).expect("JSON answer");
    (reply.status, json)
}

fn token(client: &mut Client) -> String {
    let body = json!({ "username": "ann", "password": "pw" });
    let (status, reply) = client.json("POST", "/api/t/acme/register", None, Some(body));
    assert_eq!(status, 201);
    reply["token"].as_str().expect("token").to_owned()
}

#[test]
fn upload_records_the_file_size_and_name() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let token = token(&mut client);
    let (status, reply) = upload(&mut client, &token, &multipart_body("talk.mp3", 102_400));
    let expected = json!({ "upload_id": 1, "bytes": 102_400, "filename": "talk.mp3" });
    assert_eq!((status, &reply), (201, &expected));
    let (status, stored) = client.json("GET", "/api/t/acme/uploads/1", Some(&token), None);
    assert_eq!((status, stored), (200, expected));

    let not_multipart = client.json("POST", "/api/t/acme/uploads", Some(&token), Some(json!({})));
    assert_eq!(not_multipart.0, 415);
    let body = format!("--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"other\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n");
    assert_eq!(upload(&mut client, &token, body.as_bytes()).0, 400);
}

#[test]
fn upload_over_the_limit_is_refused_after_draining() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let token = token(&mut client);
    let (status, reply) = upload(&mut client, &token, &multipart_body("big.wav", 9 << 20));
    assert_eq!(status, 413, "{reply}");
    // The body was drained, so the connection still carries requests.
    let (status, _) = upload(&mut client, &token, &multipart_body("small.wav", 10));
    assert_eq!(status, 201);
    // The limit counts every part's data: here the title's 12 bytes and the file's.
    let (status, _) = upload(
        &mut client,
        &token,
        &multipart_body("max.wav", (8 << 20) - 12),
    );
    assert_eq!(status, 201);
    let (status, _) = upload(
        &mut client,
        &token,
        &multipart_body("max.wav", (8 << 20) - 11),
    );
    assert_eq!(status, 413);
}
