//! The QR code of the wa.me link, drawn as one SVG path (a square per dark module), with the
//! four-module quiet zone the standard asks for.

use qrcodegen::{QrCode, QrCodeEcc};

/// The dark modules of `text`'s QR code, row by row, and its side in modules; `None` when the
/// text is too long for any QR version.
pub fn matrix(text: &str) -> Option<(usize, Vec<bool>)> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let size = qr.size();
    let cells = (0..size)
        .flat_map(|y| (0..size).map(move |x| (x, y)))
        .map(|(x, y)| qr.get_module(x, y))
        .collect();
    Some((size as usize, cells))
}

/// An SVG image of `text`'s QR code, labelled for screen readers.
pub fn svg(text: &str, label: &str) -> Option<String> {
    const QUIET: usize = 4;
    let (size, cells) = matrix(text)?;
    let mut path = String::new();
    for (i, _) in cells.iter().enumerate().filter(|(_, dark)| **dark) {
        let (x, y) = (i % size + QUIET, i / size + QUIET);
        path.push_str(&format!("M{x},{y}h1v1h-1z"));
    }
    let side = size + 2 * QUIET;
    Some(format!(
        r##"<svg class="eo-qr" role="img" aria-label="{label}" viewBox="0 0 {side} {side}" shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##,
        label = crate::dom::escape(label)
    ))
}
