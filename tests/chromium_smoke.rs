//! End-to-end check of the CDP driver in `support/chromium.rs`, independent of
//! panelcam: a throwaway HTTP server serves one animated page and we drive it.

#[path = "support/chromium.rs"]
mod chromium;

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html><head><title>t0</title></head>
<body>
<canvas id="c" width="200" height="100"></canvas>
<button id="btn" onclick="window.clicked = (window.clicked || 0) + 1">go</button>
<script>
  console.log('hi');
  const ctx = document.getElementById('c').getContext('2d');
  let n = 0;
  setInterval(() => {
    n += 1;
    document.title = 't' + n;
    ctx.fillStyle = n % 2 ? '#c00' : '#00c';
    ctx.fillRect(0, 0, 200, 100);
  }, 200);
</script>
</body></html>"#;

/// Serves `PAGE` at `/` (404 elsewhere, e.g. favicon) with one response per connection.
async fn serve_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = if req.starts_with(b"GET / ") { ("200 OK", PAGE) } else { ("404 Not Found", "") };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn chromium_driver_end_to_end() {
    if !chromium::available() {
        eprintln!("skipping chromium_driver_end_to_end: {} not found", chromium::CHROMIUM);
        return;
    }
    let url = serve_page().await;
    let browser = chromium::Browser::launch().await.expect("launch chromium");
    let page = browser.new_page(&url).await.expect("open test page");

    // The title ticks every 200 ms, so this also proves timers run in a headless tab.
    let title = match page.wait_for("document.title !== 't0' && document.title", Duration::from_secs(5)).await {
        Ok(title) => title,
        Err(e) => panic!("{e}; console: {:?}", page.console_messages().await),
    };
    assert!(title.as_str().is_some_and(|t| t.starts_with('t')), "title {title}");

    assert_eq!(page.eval("1+1").await.unwrap(), json!(2));
    assert_eq!(page.eval("undefined").await.unwrap(), json!(null));
    assert_eq!(page.eval("new Promise(r => setTimeout(() => r('late'), 50))").await.unwrap(), json!("late"));

    let err = page.eval("throw new Error('boom')").await.unwrap_err();
    assert!(err.contains("boom"), "{err}");
    let err = page.eval("Promise.reject(new Error('nope'))").await.unwrap_err();
    assert!(err.contains("nope"), "{err}");

    let err = page.wait_for("false", Duration::from_millis(300)).await.unwrap_err();
    assert!(err.contains("timed out") && err.contains("false"), "{err}");

    page.click("#btn").await.unwrap();
    assert_eq!(page.eval("window.clicked").await.unwrap(), json!(1));
    let err = page.click("#missing").await.unwrap_err();
    assert!(err.contains("#missing"), "{err}");

    // The canvas is painted by the interval; an opaque pixel proves the script drew.
    page.wait_for(
        "document.getElementById('c').getContext('2d').getImageData(5, 5, 1, 1).data[3] === 255",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let png = page.screenshot_png().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {:?}", &png[..png.len().min(16)]);
    assert!(png.len() > 1000, "suspiciously small screenshot: {} bytes", png.len());

    // Console events arrive asynchronously, so poll briefly.
    page.eval("console.warn('from eval', 42)").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let msgs = page.console_messages().await;
        if msgs.iter().any(|m| m == "[log] hi") && msgs.iter().any(|m| m == "[warning] from eval 42") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "console messages missing: {msgs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Uncaught exceptions from page code are collected too.
    page.eval("setTimeout(() => { throw new Error('async-boom') }, 0)").await.unwrap();
    page.wait_for("new Promise(r => setTimeout(() => r(true), 50))", Duration::from_secs(1)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !page.console_messages().await.iter().any(|m| m.starts_with("[exception]") && m.contains("async-boom")) {
        assert!(tokio::time::Instant::now() < deadline, "exception not captured: {:?}", page.console_messages().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A second page shares the connection with its own session and state...
    let second = browser.new_page(&url).await.unwrap();
    // --window-size is the outer size; headless still reserves ~87 px of "browser UI".
    assert_eq!(second.eval("innerWidth").await.unwrap(), json!(1280));
    assert_eq!(second.eval("window.clicked ?? 0").await.unwrap(), json!(0));
    // ...and must not push the first page into the background: a hidden page stops
    // painting, which makes captureScreenshot hang.
    assert_eq!(page.eval("document.visibilityState").await.unwrap(), json!("visible"));
    let png = tokio::time::timeout(Duration::from_secs(10), page.screenshot_png()).await;
    assert!(png.expect("screenshot of first page timed out").is_ok());
}

#[test]
fn base64_decoder() {
    assert_eq!(chromium::base64_decode("").unwrap(), b"");
    assert_eq!(chromium::base64_decode("Zg==").unwrap(), b"f");
    assert_eq!(chromium::base64_decode("Zm8=").unwrap(), b"fo");
    assert_eq!(chromium::base64_decode("Zm9v").unwrap(), b"foo");
    assert_eq!(chromium::base64_decode("Zm9vYmFy\n").unwrap(), b"foobar");
    assert_eq!(chromium::base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert!(chromium::base64_decode("Zm9v!").is_err());
}
