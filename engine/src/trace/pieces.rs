//! How tokens read in the Inspect view and `tinylm inspect`: run.c's decode rules, with bytes
//! and blanks made visible (so both JSON exports name tokens alike).

use crate::tokenizer::Piece;
use crate::Tokenizer;

/// How each token of the text reads, after run.c's decode rules.
pub fn token_pieces(tok: &Tokenizer, tokens: &[u32]) -> Vec<String> {
    let first = tokens.first().and_then(|&t| tok.piece(t)).map(raw_readable).unwrap_or_default();
    let rest = tokens.windows(2).map(|w| tok.decode(w[0], w[1]).map(|p| readable(&p)).unwrap_or_else(|_| "?".into()));
    std::iter::once(first).chain(rest).collect()
}

/// A vocabulary piece as stored, `<0xHH>` pieces read as `readable` shows bytes.
pub fn raw_readable(piece: &[u8]) -> String {
    let byte = match piece {
        [b'<', b'0', b'x', _, _, b'>'] => std::str::from_utf8(&piece[3..5]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()),
        _ => None,
    };
    let text = String::from_utf8_lossy(piece);
    match byte {
        Some(b) => readable(&Piece::Byte(b)),
        // llama2.c stores BOS and EOS as "\n<s>\n" and "\n</s>\n".
        None if matches!(text.trim(), "<s>" | "</s>" | "<unk>") => text.trim().to_string(),
        None => visible(&text),
    }
}

/// Text pieces as text (line breaks and tabs as symbols); byte pieces as the character when
/// printable ASCII, else `<0xHH>` (a part of a multi-byte character, or a control byte).
fn readable(p: &Piece) -> String {
    match *p {
        Piece::Text(b) => visible(&String::from_utf8_lossy(b)),
        Piece::Byte(b) if b.is_ascii_graphic() || b == b' ' => (b as char).to_string(),
        Piece::Byte(b'\n') => "↵".into(),
        Piece::Byte(b) => format!("<0x{b:02X}>"),
    }
}

/// Line breaks and tabs as symbols; a piece of only spaces as `␣`s (else it would not show).
fn visible(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b == b' ') {
        return "␣".repeat(s.len());
    }
    s.replace('\n', "↵").replace('\t', "⇥")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_read_as_text() {
        assert_eq!(readable(&Piece::Text(b" upon")), " upon");
        assert_eq!(readable(&Piece::Byte(b'\n')), "↵");
        assert_eq!(readable(&Piece::Byte(0xE2)), "<0xE2>");
        assert_eq!(readable(&Piece::Byte(b'A')), "A");
        assert_eq!(raw_readable(b"<0x0A>"), "↵");
        assert_eq!(raw_readable(b"<0xC3>"), "<0xC3>");
        assert_eq!(raw_readable(b"\n<s>\n"), "<s>");
        assert_eq!(raw_readable(b" "), "␣");
        assert_eq!(raw_readable(b"a\nb\t"), "a↵b⇥");
        assert_eq!(raw_readable(b"<0x41>"), "A");
        assert_eq!(raw_readable(b"<0xE2>"), "<0xE2>");
        assert_eq!(raw_readable(b"  "), "␣␣");
    }
}
