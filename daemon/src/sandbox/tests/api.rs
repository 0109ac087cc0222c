//! The `/api/t/{t}/` journeys end to end: auth, tenant isolation, quiz, members, events.

use serde_json::{json, Value};

use super::{connect, sandbox, Client};

/// Registers `username` (password `pw`) in `tenant`; returns the user id and token.
fn register(client: &mut Client, tenant: &str, username: &str) -> (u64, String) {
    let body = json!({ "username": username, "password": "pw" });
    let path = format!("/api/t/{tenant}/register");
    let (status, reply) = client.json("POST", &path, None, Some(body));
    assert_eq!(status, 201, "{reply}");
    let user_id = reply["user_id"].as_u64().expect("user_id");
    let token = reply["token"].as_str().expect("token").to_owned();
    (user_id, token)
}

#[test]
fn quiz_journey_ends_on_the_scoreboard() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let (ann_id, ann) = register(&mut client, "acme", "ann");
    let (bob_id, bob) = register(&mut client, "acme", "bob");
    let (_, carol) = register(&mut client, "acme", "carol");

    let title = json!({ "title": "friday quiz" });
    let (status, created) = client.json("POST", "/api/t/acme/sessions", Some(&ann), Some(title));
    assert_eq!(status, 201);
    let id = created["session_id"].as_u64().expect("session_id");
    let join = format!("/api/t/acme/sessions/{id}/join");
    let (status, joined) = client.json("POST", &join, Some(&ann), None);
    assert_eq!(status, 200);
    assert_eq!(joined, json!({ "session_id": id, "player_id": 1 }));
    // Joining again changes nothing.
    assert_eq!(client.json("POST", &join, Some(&ann), None).1, joined);
    assert_eq!(
        client.json("POST", &join, Some(&bob), None).1["player_id"],
        2
    );

    let answers = format!("/api/t/acme/sessions/{id}/answers");
    let answer = |question: u32, answer: &str| json!({ "question": question, "answer": answer });
    let (status, scored) = client.json("POST", &answers, Some(&ann), Some(answer(1, "42")));
    assert_eq!(
        (status, scored),
        (201, json!({ "correct": true, "score": 1 }))
    );
    let (_, scored) = client.json("POST", &answers, Some(&ann), Some(answer(2, "7")));
    assert_eq!(scored, json!({ "correct": false, "score": 1 }));
    for question in 1..=2 {
        client.json("POST", &answers, Some(&bob), Some(answer(question, "42")));
    }
    let (status, _) = client.json("POST", &answers, Some(&carol), Some(answer(1, "42")));
    assert_eq!(status, 409, "answering before joining");

    let scoreboard = format!("/api/t/acme/sessions/{id}/scoreboard");
    let (status, board) = client.json("GET", &scoreboard, Some(&carol), None);
    assert_eq!(status, 200);
    // Four answers accepted (ann's two, bob's two); carol's refused one is not counted.
    let expected = json!({ "scores": [
        { "user_id": bob_id, "username": "bob", "score": 2 },
        { "user_id": ann_id, "username": "ann", "score": 1 },
    ], "players": 2, "total_answers": 4 });
    assert_eq!(board, expected);

    let (_, list) = client.json("GET", "/api/t/acme/sessions", Some(&ann), None);
    let expected =
        json!({ "sessions": [{ "session_id": id, "title": "friday quiz", "players": 2 }] });
    assert_eq!(list, expected);
    let unknown = "/api/t/acme/sessions/99/join";
    assert_eq!(client.json("POST", unknown, Some(&ann), None).0, 404);
    // 3 registers, 1 create, 3 joins, 4 answers, 1 refused answer, scoreboard, list, 1 404.
    assert_eq!(sandbox.requests(), 15);
}

#[test]
fn register_and_login_check_their_input() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let (user_id, _) = register(&mut client, "acme", "ann");
    let again = json!({ "username": "ann", "password": "other" });
    let (status, reply) = client.json("POST", "/api/t/acme/register", None, Some(again));
    assert_eq!(status, 409);
    assert!(reply["error"].is_string());
    let missing = json!({ "username": "dan" });
    assert_eq!(
        client
            .json("POST", "/api/t/acme/register", None, Some(missing))
            .0,
        400
    );
    let reply = client.request_with("POST", "/api/t/acme/register", &[], b"{not json");
    assert_eq!(reply.status, 400);
    let bad_tenant = json!({ "username": "ann", "password": "pw" });
    assert_eq!(
        client
            .json("POST", "/api/t/ACME/register", None, Some(bad_tenant))
            .0,
        400
    );

    let login = |password: &str| json!({ "username": "ann", "password": password });
    let (status, reply) = client.json("POST", "/api/t/acme/login", None, Some(login("pw")));
    assert_eq!((status, &reply["user_id"]), (200, &json!(user_id)));
    let token = reply["token"].as_str().expect("token");
    assert_eq!(
        client
            .json("GET", "/api/t/acme/sessions", Some(token), None)
            .0,
        200
    );
    assert_eq!(
        client
            .json("POST", "/api/t/acme/login", None, Some(login("no")))
            .0,
        401
    );
    assert_eq!(
        client
            .json("POST", "/api/t/other/login", None, Some(login("pw")))
            .0,
        401
    );
}

#[test]
fn tokens_work_only_in_their_own_tenant() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let (_, token_a) = register(&mut client, "tenant-a", "ann");
    register(&mut client, "tenant-b", "ann");
    let (status, reply) = client.json("GET", "/api/t/tenant-b/sessions", Some(&token_a), None);
    assert_eq!(status, 403);
    assert_eq!(reply, json!({ "error": "token belongs to another tenant" }));
    assert_eq!(
        client.json("GET", "/api/t/tenant-b/sessions", None, None).0,
        401
    );
    let bogus = Some("0123456789abcdef");
    assert_eq!(
        client
            .json("GET", "/api/t/tenant-b/sessions", bogus, None)
            .0,
        401
    );
    assert_eq!(
        client
            .json("GET", "/api/t/tenant-a/sessions", Some(&token_a), None)
            .0,
        200
    );
}

#[test]
fn members_are_created_searched_paged_updated_and_deleted() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let (_, token) = register(&mut client, "acme", "admin");
    let token = Some(token.as_str());
    for i in 1..=25 {
        let domain = if i % 5 == 0 {
            "Example.org"
        } else {
            "test.net"
        };
        let member = json!({ "name": format!("Member {i}"), "email": format!("m{i}@{domain}") });
        let (status, created) = client.json("POST", "/api/t/acme/members", token, Some(member));
        assert_eq!((status, &created["id"]), (201, &json!(i)));
    }

    let page = |client: &mut Client, query: &str| {
        let (status, page) =
            client.json("GET", &format!("/api/t/acme/members?{query}"), token, None);
        assert_eq!(status, 200, "{page}");
        let ids: Vec<u64> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|m| m["id"].as_u64().expect("id"))
            .collect();
        (
            ids,
            page["total"].as_u64().expect("total"),
            page["per_page"].as_u64().expect("per_page"),
        )
    };
    assert_eq!(page(&mut client, ""), ((1..=20).collect(), 25, 20));
    assert_eq!(page(&mut client, "page=2"), ((21..=25).collect(), 25, 20));
    assert_eq!(
        page(&mut client, "q=EXAMPLE&per_page=2"),
        (vec![5, 10], 5, 2)
    );
    assert_eq!(
        page(&mut client, "q=example&page=3&per_page=2"),
        (vec![25], 5, 2)
    );
    assert_eq!(page(&mut client, "q=member%2012"), (vec![12], 1, 20));
    let too_many = client.json("GET", "/api/t/acme/members?per_page=101", token, None);
    assert_eq!(too_many.0, 400);

    let (status, member) = client.json("GET", "/api/t/acme/members/3", token, None);
    let expected = json!({ "id": 3, "name": "Member 3", "email": "m3@test.net" });
    assert_eq!((status, member), (200, expected));
    let rename = json!({ "name": "Renamed" });
    let (status, member) = client.json("PUT", "/api/t/acme/members/3", token, Some(rename));
    let expected = json!({ "id": 3, "name": "Renamed", "email": "m3@test.net" });
    assert_eq!((status, member), (200, expected));
    assert_eq!(page(&mut client, "q=renamed"), (vec![3], 1, 20));
    let delete = client.json("DELETE", "/api/t/acme/members/3", token, None);
    assert_eq!(delete, (204, Value::Null));
    assert_eq!(
        client.json("GET", "/api/t/acme/members/3", token, None).0,
        404
    );
    assert_eq!(
        client
            .json("DELETE", "/api/t/acme/members/3", token, None)
            .0,
        404
    );
    assert_eq!(
        client.json("GET", "/api/t/acme/members/x", token, None).0,
        404
    );
    assert_eq!(page(&mut client, "").1, 24);
}

#[test]
fn rsvps_and_subscriptions_are_idempotent() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let (_, ann) = register(&mut client, "acme", "ann");
    let (_, bob) = register(&mut client, "acme", "bob");
    let launch = json!({ "name": "launch" });
    let (status, event) = client.json("POST", "/api/t/acme/events", Some(&ann), Some(launch));
    assert_eq!(status, 201);
    let id = event["event_id"].as_u64().expect("event_id");

    let rsvp = format!("/api/t/acme/events/{id}/rsvp");
    let expect = |rsvps: u64| json!({ "event_id": id, "rsvps": rsvps });
    assert_eq!(
        client.json("POST", &rsvp, Some(&ann), None),
        (201, expect(1))
    );
    assert_eq!(
        client.json("POST", &rsvp, Some(&ann), None),
        (200, expect(1))
    );
    assert_eq!(
        client.json("POST", &rsvp, Some(&bob), None),
        (201, expect(2))
    );
    let (status, event) = client.json("GET", &format!("/api/t/acme/events/{id}"), Some(&bob), None);
    assert_eq!(
        (status, event),
        (200, json!({ "event_id": id, "name": "launch", "rsvps": 2 }))
    );
    assert_eq!(
        client
            .json("POST", "/api/t/acme/events/9/rsvp", Some(&ann), None)
            .0,
        404
    );

    let topic = || Some(json!({ "topic": "news" }));
    let (status, first) = client.json("POST", "/api/t/acme/subscriptions", Some(&ann), topic());
    assert_eq!(status, 201);
    let (status, again) = client.json("POST", "/api/t/acme/subscriptions", Some(&ann), topic());
    assert_eq!((status, &again), (200, &first));
    let (_, list) = client.json("GET", "/api/t/acme/subscriptions", Some(&ann), None);
    assert_eq!(list, json!({ "subscriptions": [first] }));
}
