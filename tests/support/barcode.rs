//! Wall-clock barcode drawn by `scripts/test-camera.py --barcode`.
//!
//! Layout (in the source frame of width W and height H):
//! * the band is the top `round(H * 64 / 720)` luma rows (64 at 720p);
//! * it is split horizontally into 64 cells, cell `i` spanning
//!   `floor(i*W/64) .. floor((i+1)*W/64)`;
//! * white (Y=235) = 1, black (Y=16) = 0;
//! * cells 0..48: 48-bit Unix time in ms, most significant bit first;
//! * cells 48..64: `w0 ^ w1 ^ w2 ^ 0xA5A5` over the three 16-bit words of the
//!   timestamp, so a torn, scaled or half-decoded frame is rejected instead of
//!   yielding a bogus time.
//!
//! Included with `#[path]` from integration tests and benches, so it only uses
//! std and has no test-only gating on its public functions.
#![allow(dead_code)]

/// Number of cells across the band.
pub const CELLS: usize = 64;
const TS_BITS: u32 = 48;
const CHECK_XOR: u16 = 0xA5A5;
pub const Y_WHITE: u8 = 235;
pub const Y_BLACK: u8 = 16;

/// The 16-bit check value stored in cells 48..64.
pub fn check_word(ts_ms: u64) -> u16 {
    let w0 = (ts_ms >> 32) as u16;
    let w1 = (ts_ms >> 16) as u16;
    let w2 = ts_ms as u16;
    w0 ^ w1 ^ w2 ^ CHECK_XOR
}

/// Band height in rows for an image of the given height (scales with it, so
/// the decoder works on downscaled frames too).
pub fn band_rows(height: usize) -> usize {
    (height * 64 + 360) / 720 // round half up, like the camera script
}

/// Horizontal extent `[x0, x1)` of cell `i` for an image `width` wide.
pub fn cell_span(i: usize, width: usize) -> (usize, usize) {
    (i * width / CELLS, (i + 1) * width / CELLS)
}

/// One luma row of the band encoding `ts_ms` (only the low 48 bits are used).
pub fn encode_barcode_row(ts_ms: u64, width: usize) -> Vec<u8> {
    let ts = ts_ms & ((1 << TS_BITS) - 1);
    let bits = (ts << 16) | u64::from(check_word(ts));
    let mut row = vec![Y_BLACK; width];
    for i in 0..CELLS {
        if (bits >> (CELLS - 1 - i)) & 1 == 1 {
            let (x0, x1) = cell_span(i, width);
            row[x0..x1].fill(Y_WHITE);
        }
    }
    row
}

/// Decodes the barcode from a luma plane (row-major, stride == `width`).
///
/// Each cell is sampled at its horizontal centre on the band's middle row,
/// averaging a 3x3 window (clamped to the image) to ride out scaling blur and
/// JPEG ringing, then thresholded at 128. Returns the timestamp in ms, or
/// `None` if the image is too small or the check word does not match.
pub fn decode_barcode(luma: &[u8], width: usize, height: usize) -> Option<u64> {
    if width < CELLS || height == 0 || luma.len() < width.checked_mul(height)? {
        return None;
    }
    // Narrow cells (< 3 px) get a 1-px-wide window so we never average in a
    // neighbouring cell.
    let dx = usize::from(width >= 3 * CELLS);
    let band = band_rows(height).max(1);
    let cy = (band / 2).min(height - 1);
    let (y0, y1) = (cy.saturating_sub(1), (cy + 1).min(height - 1));
    let mut bits = 0u64;
    for i in 0..CELLS {
        let (x0, x1) = cell_span(i, width);
        let cx = (x0 + x1) / 2;
        let (xa, xb) = (cx.saturating_sub(dx), (cx + dx).min(width - 1));
        let (mut sum, mut n) = (0u32, 0u32);
        for y in y0..=y1 {
            for &v in &luma[y * width + xa..=y * width + xb] {
                sum += u32::from(v);
                n += 1;
            }
        }
        bits = (bits << 1) | u64::from(sum >= 128 * n);
    }
    let ts = bits >> 16;
    (check_word(ts) == bits as u16).then_some(ts)
}
