//! Small text helpers every layer shares (plain text made tidy, cut, or escaped as HTML), in a
//! module of their own so that no two layers need each other for them.

/// Plain text as HTML text.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Plain text made tidy: control and bidirectional-override characters dropped, whitespace
/// collapsed, ends trimmed.
pub fn collapse(s: &str) -> String {
    // One pass, one allocation: this runs over whole articles' text.
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars() {
        if c.is_whitespace() {
            gap = !out.is_empty();
        } else if !c.is_control() && !is_bidi_control(c) {
            if gap {
                out.push(' ');
                gap = false;
            }
            out.push(c);
        }
    }
    out
}

/// At most `max` characters, cut at a word where possible, with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    let cut = head
        .rfind(' ')
        .filter(|&i| i > max / 2)
        .map_or(head.as_str(), |i| &head[..i]);
    format!("{}…", cut.trim_end())
}

/// Characters that reorder the text around them (bidirectional embeddings, overrides and
/// isolates): in a name or a title they can make a reader see something else than is there.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_keeps_words_and_drops_controls_and_bidi_overrides() {
        assert_eq!(collapse("  a \n\t b  "), "a b");
        assert_eq!(collapse("a \u{202E} b"), "a b");
        assert_eq!(collapse("a\u{0007}b\u{2066}c"), "abc");
        assert_eq!(collapse("\u{202E}  "), "");
        assert_eq!(collapse("naïve\u{00A0}café"), "naïve café");
    }
}
