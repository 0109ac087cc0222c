//! Panic containment for the engine's threads: a shard or the collector that panics must end
//! its run with a reason, never leave it hanging or running unseen.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into its message. The closures given here own or borrow only
/// what is dropped or abandoned with the thread, so no broken invariant is observed after.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| message(payload.as_ref()))
}

/// What a panic said, when it said it as text.
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        assert_eq!(
            contain(|| panic!("boom {}", 1)),
            Err::<(), _>("boom 1".into())
        );
        assert_eq!(
            contain(|| std::panic::panic_any(3u8)),
            Err::<(), _>("a panic without a message".into())
        );
    }
}
