//! What a page's live picture shows, for the browser tests: a small fingerprint of whatever
//! element of a player box is on screen (the `<img>` of MJPEG, the `<video>` of Media Source,
//! the `<canvas>` of WebCodecs: `data-mode` of the box says which), and a check that it moves.

use std::time::Duration;

use serde_json::Value;

use super::chromium::Page;

/// JS giving a hash of the picture in the player box `selector` (drawn into 64x36), or null
/// while there is none.
pub fn picture_hash_js(selector: &str) -> String {
    format!(
        "(() => {{ const box = document.querySelector({sel}); if (!box) return null;
            const mode = box.dataset.mode;
            const el = mode === 'webcodecs' ? box.querySelector('canvas.h264')
                : mode === 'mse' ? box.querySelector('video.h264') : box.querySelector('img');
            if (!el) return null;
            if (el.tagName === 'IMG' && !el.naturalWidth) return null;
            if (el.tagName === 'VIDEO' && el.readyState < 2) return null;
            if (el.tagName === 'CANVAS' && !el.width) return null;
            const c = document.createElement('canvas'); c.width = 64; c.height = 36;
            const g = c.getContext('2d'); g.drawImage(el, 0, 0, 64, 36);
            const d = g.getImageData(0, 0, 64, 36).data; let h = 0;
            for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
            return h; }})()",
        sel = Value::from(selector)
    )
}

/// Waits for a picture in the player box `selector`, then for a different one.
pub async fn assert_picture_changes(page: &Page, selector: &str) {
    let js = picture_hash_js(selector);
    let first = page.wait_for(&js, Duration::from_secs(15)).await;
    let first = match first {
        Ok(v) => v,
        Err(e) => panic!("no picture in {selector}: {e}; console: {:?}", page.console_messages().await),
    };
    let changed = format!("(() => {{ const h = {js}; return h !== null && h !== {first} ? h : null; }})()");
    let second = page.wait_for(&changed, Duration::from_secs(10)).await;
    assert!(second.is_ok(), "picture did not change: {second:?}; console: {:?}", page.console_messages().await);
}
