//! Deciding whether file bytes are text or binary, and their MIME type, the
//! same way for every environment.

use base64::Engine;
use bytes::Bytes;

use crate::protocol::file::{ContentType, FileContent};

/// How much of a file is inspected for NUL bytes, as git and ripgrep do.
const SNIFF_BYTES: usize = 8000;

pub fn classify(path: &str, bytes: Bytes) -> FileContent {
    let guessed = mime_guess::from_path(path).first();
    let is_image = guessed.as_ref().is_some_and(|m| m.type_() == mime_guess::mime::IMAGE && m.subtype() != "svg");
    let has_nul = bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0);
    if !is_image && !has_nul {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            return FileContent { kind: ContentType::Text, content: text.to_string(), encoding: None, mime_type: None };
        }
    }
    let mime = match guessed {
        Some(m) if m.type_() != mime_guess::mime::TEXT => m.essence_str().to_string(),
        _ => "application/octet-stream".to_string(),
    };
    FileContent {
        kind: ContentType::Binary,
        content: base64::engine::general_purpose::STANDARD.encode(&bytes),
        encoding: Some("base64".into()),
        mime_type: Some(mime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_binary_and_images() {
        let t = classify("a.rs", Bytes::from_static(b"fn main() {}\n"));
        assert_eq!(t.kind, ContentType::Text);
        assert!(t.mime_type.is_none());
        let b = classify("bin.dat", Bytes::from_static(b"\x00\x01\x02"));
        assert_eq!((b.kind, b.mime_type.as_deref(), b.content.as_str()), (ContentType::Binary, Some("application/octet-stream"), "AAEC"));
        let png = classify("img.png", Bytes::from_static(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(png.mime_type.as_deref(), Some("image/png"));
        let latin1 = classify("notes.txt", Bytes::from_static(b"caf\xe9"));
        assert_eq!(latin1.kind, ContentType::Binary);
    }
}
