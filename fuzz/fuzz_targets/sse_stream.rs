//! Fuzzes loadctl's event-stream reader (`remote::sse`): arbitrary bytes read line by line
//! through a small and a large buffer must give the same events or the same refusal, and no
//! event may exceed the bound. First byte: the small buffer's capacity.
#![no_main]

use std::io::BufReader;

use cli::remote::sse::{read_line, Event, LineError, Parser};
use libfuzzer_sys::fuzz_target;

const BOUND: usize = 16 << 20;

fn events(stream: &[u8], capacity: usize) -> (Vec<Event>, Option<String>) {
    let mut reader = BufReader::with_capacity(capacity, stream);
    let mut parser = Parser::default();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        let line = match read_line(&mut reader, &mut buf) {
            Ok(Some(line)) => line,
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(kind(&e))),
        };
        match parser.line(line) {
            Ok(Some(event)) => {
                assert!(event.data.len() <= BOUND);
                out.push(event);
            }
            Ok(None) => {}
            Err(e) => return (out, Some(kind(&e))),
        }
    }
}

fn kind(e: &LineError) -> String {
    e.to_string()
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let small = usize::from(control).max(1);
    assert_eq!(events(stream, small), events(stream, 64 * 1024));
});
