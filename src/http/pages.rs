//! The web pages, embedded into the binary from `web/`. Shared CSS and the player script are
//! inlined into each page once at first use: pages must work behind any reverse-proxy prefix
//! (`/video/cam1/stream`), and a page that needs no second request has no relative-URL trap.
//! Each page carries its Content-Security-Policy, which allows its inline blocks by hash
//! (`super::security`).

use std::sync::OnceLock;

use bytes::Bytes;

pub struct Page {
    pub html: Bytes,
    /// The page's Content-Security-Policy without `frame-ancestors` (that is configured).
    pub policy: String,
}

pub struct Pages {
    pub dashboard: Page,
    pub admin: Page,
    pub test: Page,
    pub stream: Page,
    pub control: Page,
}

const STYLE: &str = include_str!("../../web/style.css");
/// The player and, after it, the H.264 player it uses (fMP4 parsing, the WebCodecs and Media
/// Source sinks, the socket): separate files so each stays readable, one inline block per page.
/// The WinCC control loads the same three H.264 files as scripts of its own (`cwc/`).
const PLAYER: &str = concat!(
    include_str!("../../web/player.js"),
    include_str!("../../web/fmp4.js"),
    include_str!("../../web/h264-sinks.js"),
    include_str!("../../web/h264.js"),
);

/// The icon inline, so no page asks for `/favicon.ico` (and logs a 404 when it is missing).
const ICON: &str = "<link rel=\"icon\" href=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect x='1' y='4' width='10' height='8' rx='1' fill='%23246'/%3E%3Cpath d='M11 7l4-2v6l-4-2z' fill='%23246'/%3E%3C/svg%3E\">";

fn assemble(html: &str) -> Page {
    let html = html.replacen("<meta charset=\"utf-8\">", &format!("<meta charset=\"utf-8\">\n{ICON}"), 1);
    // Browsers hash inline blocks after turning CRLF into LF: so does the page (a checkout
    // with CRLF line ends must not break the policy).
    let html = html.replace("/*STYLE*/", STYLE).replace("/*PLAYER*/", PLAYER).replace("\r\n", "\n");
    Page { policy: super::security::page_policy(&html), html: Bytes::from(html) }
}

pub fn pages() -> &'static Pages {
    static PAGES: OnceLock<Pages> = OnceLock::new();
    PAGES.get_or_init(|| Pages {
        dashboard: assemble(include_str!("../../web/dashboard.html")),
        admin: assemble(include_str!("../../web/admin.html")),
        test: assemble(include_str!("../../web/test.html")),
        stream: assemble(include_str!("../../web/stream.html")),
        control: assemble(include_str!("../../web/control.html")),
    })
}
