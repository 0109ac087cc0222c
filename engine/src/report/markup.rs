//! Text made safe inside HTML and SVG markup: the five characters that could end an element
//! or an attribute, as entities. The HTML page, its SVG charts and the comparison page all
//! escape through here.
//!
//! It escapes text only; it refuses to sanitise markup (nothing here lets user HTML through).

/// `<`, `>`, `&`, `"` and `'` as entities.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("µs ✓"), "µs ✓");
    }
}
