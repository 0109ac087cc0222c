//! How many runs loadd keeps: at most `--max-queued` waiting (past it a submission is 429),
//! and with `--keep-runs N` only the newest N that are over (older ones are deleted, memory and
//! disk, each time a run ends and at start); `DELETE /v1/runs/{id}` removes one that is over.
//!
//! It refuses to delete a run that is queued or running, and it only ever deletes runs by an
//! id found in the registry (ids loadd generated), never by a name from a request.

use super::{RunState, Runs};

/// The operator's bounds on the registry.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Most runs waiting to start.
    pub max_queued: usize,
    /// Runs that are over kept, newest first (`None`: all).
    pub keep_runs: Option<usize>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_queued: 16,
            keep_runs: None,
        }
    }
}

/// Why a delete was refused.
#[derive(Debug)]
pub enum DeleteError {
    NotFound,
    NotOver(RunState),
    Store(std::io::Error),
}

impl Runs {
    /// Deletes a run that is over, from memory and disk.
    pub fn delete(&self, id: &str) -> Result<(), DeleteError> {
        {
            let mut runs = self.lock();
            let run = runs.get(id).ok_or(DeleteError::NotFound)?;
            if !run.meta.state.is_over() {
                return Err(DeleteError::NotOver(run.meta.state));
            }
            runs.remove(id);
        }
        self.store.remove(id).map_err(DeleteError::Store)
    }

    /// Drops the oldest runs that are over beyond `--keep-runs`.
    pub(super) fn prune(&self) {
        let Some(keep) = self.retention.keep_runs else {
            return;
        };
        let dropped: Vec<String> = {
            let mut runs = self.lock();
            let over: Vec<String> = runs
                .values()
                .filter(|r| r.meta.state.is_over())
                .map(|r| r.meta.id.clone())
                .collect();
            // Ids sort in submission order: the first ones are the oldest.
            let excess = over.len().saturating_sub(keep);
            let dropped: Vec<String> = over.into_iter().take(excess).collect();
            for id in &dropped {
                runs.remove(id);
            }
            dropped
        };
        // Disk work after the lock is released.
        for id in dropped {
            if let Err(e) = self.store.remove(&id) {
                eprintln!("loadd: warning: run {id}: cannot delete it: {e}");
            }
        }
    }

    /// Runs waiting to start, against `--max-queued`.
    pub(super) fn queue_is_full(
        &self,
        runs: &std::collections::BTreeMap<String, super::Run>,
    ) -> bool {
        let queued = runs
            .values()
            .filter(|r| r.meta.state == RunState::Queued)
            .count();
        queued >= self.retention.max_queued
    }
}
