//! Quiz sessions: create, list, join, answer, scoreboard (the "join a session, answer, read the
//! scoreboard" journey).
//!
//! The rule is fixed so a scenario can predict scores: an answer is correct iff it is `"42"`
//! (ignoring surrounding spaces), and a player's score is the number of questions whose latest
//! answer is correct. It refuses anything stateful beyond that: no timers, rounds or question text.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::caller::{lock, Caller};
use super::api::error::ApiError;
use super::api::input::{check_text, Id, JsonBody};

/// The one correct answer to every question.
const CORRECT_ANSWER: &str = "42";

#[derive(Default)]
pub(super) struct Quiz {
    sessions: BTreeMap<u64, QuizSession>,
    next_id: u64,
}

struct QuizSession {
    title: String,
    /// By user id.
    players: HashMap<u64, Player>,
    /// Every answer accepted, so a run can check that none was lost.
    total_answers: u64,
}

struct Player {
    player_id: u64,
    username: Arc<str>,
    /// Whether each question's latest answer was correct.
    answers: HashMap<u32, bool>,
    score: u64,
}

impl Quiz {
    fn create(&mut self, title: String) -> u64 {
        self.next_id += 1;
        let session = QuizSession {
            title,
            players: HashMap::new(),
            total_answers: 0,
        };
        self.sessions.insert(self.next_id, session);
        self.next_id
    }

    /// The caller's player id in the session, joining it on the first call.
    fn join(&mut self, session_id: u64, caller: &Caller) -> Result<u64, ApiError> {
        let session = self.session(session_id)?;
        let next_player_id = session.players.len() as u64 + 1;
        let player = session
            .players
            .entry(caller.user_id)
            .or_insert_with(|| Player {
                player_id: next_player_id,
                username: Arc::clone(&caller.username),
                answers: HashMap::new(),
                score: 0,
            });
        Ok(player.player_id)
    }

    /// Records an answer (replacing an earlier one to the same question); returns whether it was
    /// correct and the player's score after it.
    fn answer(
        &mut self,
        session_id: u64,
        user_id: u64,
        answer: &Answer,
    ) -> Result<Answered, ApiError> {
        let session = self.session(session_id)?;
        let player = session
            .players
            .get_mut(&user_id)
            .ok_or(ApiError::Conflict("join the session before answering"))?;
        let correct = answer.answer.trim() == CORRECT_ANSWER;
        session.total_answers += 1;
        let was_correct = player.answers.insert(answer.question, correct) == Some(true);
        match (was_correct, correct) {
            (false, true) => player.score += 1,
            (true, false) => player.score -= 1,
            _ => {}
        }
        Ok(Answered {
            correct,
            score: player.score,
        })
    }

    /// Every player, highest score first (ties by user id), and the answers accepted.
    fn scoreboard(&mut self, session_id: u64) -> Result<Scoreboard, ApiError> {
        let session = self.session(session_id)?;
        let mut scores: Vec<Score> = (session.players.iter())
            .map(|(&user_id, player)| Score {
                user_id,
                username: player.username.to_string(),
                score: player.score,
            })
            .collect();
        scores.sort_by(|a, b| b.score.cmp(&a.score).then(a.user_id.cmp(&b.user_id)));
        Ok(Scoreboard {
            players: scores.len(),
            total_answers: session.total_answers,
            scores,
        })
    }

    fn session(&mut self, session_id: u64) -> Result<&mut QuizSession, ApiError> {
        (self.sessions.get_mut(&session_id)).ok_or(ApiError::NotFound("no such session"))
    }
}

#[derive(Deserialize)]
pub(super) struct NewSession {
    title: String,
}

#[derive(Serialize)]
pub(super) struct Created {
    session_id: u64,
}

#[derive(Serialize)]
pub(super) struct SessionList {
    sessions: Vec<SessionSummary>,
}

#[derive(Serialize)]
struct SessionSummary {
    session_id: u64,
    title: String,
    players: usize,
}

#[derive(Serialize)]
pub(super) struct Joined {
    session_id: u64,
    player_id: u64,
}

#[derive(Deserialize)]
pub(super) struct Answer {
    question: u32,
    answer: String,
}

#[derive(Serialize)]
pub(super) struct Answered {
    correct: bool,
    score: u64,
}

#[derive(Serialize)]
pub(super) struct Scoreboard {
    scores: Vec<Score>,
    players: usize,
    total_answers: u64,
}

#[derive(Serialize)]
struct Score {
    user_id: u64,
    username: String,
    score: u64,
}

pub(super) async fn create(
    caller: Caller,
    JsonBody(new): JsonBody<NewSession>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    check_text("title", &new.title)?;
    let session_id = lock(&caller.tenant.quiz).create(new.title);
    Ok((StatusCode::CREATED, Json(Created { session_id })))
}

pub(super) async fn list(caller: Caller) -> Json<SessionList> {
    let quiz = lock(&caller.tenant.quiz);
    let sessions = (quiz.sessions.iter())
        .map(|(&session_id, session)| SessionSummary {
            session_id,
            title: session.title.clone(),
            players: session.players.len(),
        })
        .collect();
    Json(SessionList { sessions })
}

pub(super) async fn join(caller: Caller, Id(session_id): Id) -> Result<Json<Joined>, ApiError> {
    let player_id = lock(&caller.tenant.quiz).join(session_id, &caller)?;
    Ok(Json(Joined {
        session_id,
        player_id,
    }))
}

pub(super) async fn answer(
    caller: Caller,
    Id(session_id): Id,
    JsonBody(answer): JsonBody<Answer>,
) -> Result<(StatusCode, Json<Answered>), ApiError> {
    let answered = lock(&caller.tenant.quiz).answer(session_id, caller.user_id, &answer)?;
    Ok((StatusCode::CREATED, Json(answered)))
}

pub(super) async fn scoreboard(
    caller: Caller,
    Id(session_id): Id,
) -> Result<Json<Scoreboard>, ApiError> {
    Ok(Json(lock(&caller.tenant.quiz).scoreboard(session_id)?))
}

#[cfg(test)]
mod tests {
    use super::super::tenants::Tenant;
    use super::*;

    fn caller(user_id: u64, username: &str) -> Caller {
        Caller {
            tenant: Arc::new(Tenant::new("t")),
            user_id,
            username: username.into(),
        }
    }

    fn answer(question: u32, answer: &str) -> Answer {
        Answer {
            question,
            answer: answer.into(),
        }
    }

    #[test]
    fn latest_answer_per_question_scores() {
        let mut quiz = Quiz::default();
        let id = quiz.create("s".into());
        let ann = caller(1, "ann");
        assert_eq!(quiz.join(id, &ann).expect("joins"), 1);
        assert_eq!(quiz.join(id, &ann).expect("joins again"), 1);
        assert!(matches!(
            quiz.answer(id, 2, &answer(1, "42")),
            Err(ApiError::Conflict(_))
        ));
        assert_eq!(quiz.answer(id, 1, &answer(1, "42")).expect("ok").score, 1);
        assert_eq!(quiz.answer(id, 1, &answer(1, " 42 ")).expect("ok").score, 1);
        assert_eq!(quiz.answer(id, 1, &answer(2, "42")).expect("ok").score, 2);
        let wrong = quiz.answer(id, 1, &answer(1, "41")).expect("ok");
        assert!(!wrong.correct);
        assert_eq!(wrong.score, 1);
        assert!(matches!(quiz.join(99, &ann), Err(ApiError::NotFound(_))));
    }

    #[test]
    fn scoreboard_is_sorted_by_score_then_user() {
        let mut quiz = Quiz::default();
        let id = quiz.create("s".into());
        for user in 1..=3 {
            quiz.join(id, &caller(user, "u")).expect("joins");
        }
        quiz.answer(id, 3, &answer(1, "42")).expect("ok");
        let board = quiz.scoreboard(id).expect("exists");
        let order: Vec<u64> = board.scores.iter().map(|s| s.user_id).collect();
        assert_eq!(order, [3, 1, 2]);
        assert_eq!((board.players, board.total_answers), (3, 1));
    }
}
