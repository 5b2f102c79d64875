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
const Y_WHITE: u8 = 235;
const Y_BLACK: u8 = 16;

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
fn cell_span(i: usize, width: usize) -> (usize, usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_763_717_000_123; // a 2025 timestamp in ms

    /// A WxH grey frame with the band drawn in its top rows.
    fn frame(ts: u64, w: usize, h: usize) -> Vec<u8> {
        let mut img = vec![128u8; w * h];
        let row = encode_barcode_row(ts, w);
        for y in 0..band_rows(h) {
            img[y * w..(y + 1) * w].copy_from_slice(&row);
        }
        img
    }

    /// 2:1 box downscale, 3x3 box blur, then +-12 of deterministic noise:
    /// roughly what ffmpeg's scaler plus JPEG at q 5 do to the band.
    fn degrade(img: &[u8], w: usize, h: usize) -> (Vec<u8>, usize, usize) {
        let (w2, h2) = (w / 2, h / 2);
        let px = |x: usize, y: usize| u32::from(img[y * w + x]);
        let small: Vec<u8> = (0..w2 * h2)
            .map(|i| {
                let (x, y) = (2 * (i % w2), 2 * (i / w2));
                ((px(x, y) + px(x + 1, y) + px(x, y + 1) + px(x + 1, y + 1)) / 4) as u8
            })
            .collect();
        let mut seed = 0x2545_F491_u32;
        let out = (0..w2 * h2)
            .map(|i| {
                let (x, y) = (i % w2, i / w2);
                let mut sum = 0u32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let xx = (x + dx).saturating_sub(1).min(w2 - 1);
                        let yy = (y + dy).saturating_sub(1).min(h2 - 1);
                        sum += u32::from(small[yy * w2 + xx]);
                    }
                }
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 24) as i32 % 25 - 12;
                (sum as i32 / 9 + noise).clamp(0, 255) as u8
            })
            .collect();
        (out, w2, h2)
    }

    #[test]
    fn round_trip_full_size() {
        for (w, h) in [(1280, 720), (1920, 1080), (640, 360), (1000, 562), (64, 36)] {
            assert_eq!(decode_barcode(&frame(TS, w, h), w, h), Some(TS), "{w}x{h}");
        }
    }

    #[test]
    fn round_trip_downscaled_blurred_noisy() {
        for ts in [TS, 0, (1 << 48) - 1, 0x5555_AAAA_5555, TS + 40] {
            let (img, w, h) = degrade(&frame(ts, 1280, 720), 1280, 720);
            assert_eq!((w, h), (640, 360));
            assert_eq!(decode_barcode(&img, w, h), Some(ts), "ts {ts:#x}");
        }
    }

    #[test]
    fn check_word_rejects_garbage() {
        let (w, h) = (640, 360);
        assert_eq!(decode_barcode(&vec![16; w * h], w, h), None);
        assert_eq!(decode_barcode(&vec![235; w * h], w, h), None);
        assert_eq!(decode_barcode(&vec![128; w * h], w, h), None);
        // Flip one timestamp cell: the check word must catch it.
        let mut img = frame(TS, w, h);
        let (x0, x1) = cell_span(40, w);
        for y in 0..band_rows(h) {
            for v in &mut img[y * w + x0..y * w + x1] {
                *v = if *v > 128 { Y_BLACK } else { Y_WHITE };
            }
        }
        assert_eq!(decode_barcode(&img, w, h), None);
    }

    #[test]
    fn rejects_bad_dimensions() {
        assert_eq!(decode_barcode(&[0; 100], 640, 360), None);
        assert_eq!(decode_barcode(&[0; 63 * 10], 63, 10), None);
        assert_eq!(decode_barcode(&[], 0, 0), None);
    }

    #[test]
    fn row_layout() {
        let row = encode_barcode_row(TS, 1280);
        assert_eq!(row.len(), 1280);
        // 1280/64 = 20 px per cell; cell 0 is bit 47 of a 2025 timestamp = 0.
        assert!(row[..20].iter().all(|&v| v == Y_BLACK));
        assert!(row.iter().all(|&v| v == Y_BLACK || v == Y_WHITE));
    }
}
