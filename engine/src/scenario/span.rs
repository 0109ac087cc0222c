//! Byte spans to `file:line:col`: the one place that does it, so every scenario error (syntax
//! from `parse`, meaning from `Plan::from_spec`) is located the same way.
//!
//! It only counts; it never reads a file or decides what an error says.

use std::ops::Range;

/// `name:line:col` for a byte span of `text`; just `name` when the span points nowhere (a
/// value built from flags, or text that is not there).
pub fn locate(name: &str, text: &str, span: &Range<usize>) -> String {
    if text.is_empty() || span.start > text.len() {
        return name.to_string();
    }
    let (line, col) = line_col(text, span.start);
    format!("{name}:{line}:{col}")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let upto = &text[..floor_char_boundary(text, offset)];
    let line = upto.matches('\n').count() + 1;
    let line_start = upto.rfind('\n').map_or(0, |i| i + 1);
    let col = upto[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let t = "a\nbé c\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 2), (2, 1));
        assert_eq!(line_col(t, 5), (2, 3)); // after 'b' and two-byte 'é'
        assert_eq!(line_col(t, 4), (2, 2)); // inside 'é' → floored
    }

    #[test]
    fn locate_names_the_file() {
        assert_eq!(locate("t.toml", "a\nb", &(2..3)), "t.toml:2:1");
        assert_eq!(locate("command line", "", &(0..0)), "command line");
        assert_eq!(locate("t.toml", "ab", &(9..9)), "t.toml");
    }
}
