//! The web pages, embedded into the binary from `web/`. Shared CSS and the player script are
//! inlined into each page once at first use: pages must work behind any reverse-proxy prefix
//! (`/video/cam1/stream`), and a page that needs no second request has no relative-URL trap.

use std::sync::OnceLock;

use bytes::Bytes;

pub struct Pages {
    pub dashboard: Bytes,
    pub test: Bytes,
    pub stream: Bytes,
    pub control: Bytes,
}

const STYLE: &str = include_str!("../../web/style.css");
const PLAYER: &str = include_str!("../../web/player.js");

fn assemble(html: &str) -> Bytes {
    Bytes::from(html.replace("/*STYLE*/", STYLE).replace("/*PLAYER*/", PLAYER))
}

pub fn pages() -> &'static Pages {
    static PAGES: OnceLock<Pages> = OnceLock::new();
    PAGES.get_or_init(|| Pages {
        dashboard: assemble(include_str!("../../web/dashboard.html")),
        test: assemble(include_str!("../../web/test.html")),
        stream: assemble(include_str!("../../web/stream.html")),
        control: assemble(include_str!("../../web/control.html")),
    })
}
