//! The browser client's pages, compiled into the server binary (`assets/web/`).
//!
//! Routes: `GET /` (the join form), `GET /r/{room}` (the same page; the script reads the room
//! from the path and offers to join it), `GET /web/{file}` (scripts, styles, the icon). The
//! files are plain HTML/CSS/JS with no build step; `include_str!` puts them in the binary, so
//! `confab serve` and the desktop app's "Host a call" serve them with nothing on disk.
//!
//! Every response carries a Content-Security-Policy that allows only this origin (scripts,
//! styles, the WebSocket), so the page never loads anything from elsewhere.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("call.js", JS),
    asset!("signaling.js", JS),
    asset!("peer.js", JS),
    asset!("verification.js", JS),
    asset!("marker.js", JS),
    asset!("screen.js", JS),
    // The app icon, shared with the desktop app rather than copied.
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/icon.svg"),
    },
];

/// Same-origin only. `connect-src 'self'` covers the page's own `ws(s)://` (CSP level 3);
/// `media-src` allows the `MediaStream`s the page attaches to `<video>` elements.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The routes of the browser client, to merge into the server's router.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/r/{room}", get(room))
        .route("/web/{file}", get(file))
}

async fn index() -> Response {
    serve("index.html")
}

async fn room(Path(_room): Path<String>) -> Response {
    serve("index.html")
}

async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The files change with the server binary; revalidating keeps an upgraded server from
    // mixing old and new scripts in a browser cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The names of the embedded files (for tests and the docs).
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_non_empty_and_typed() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(a.content_type.contains('/'), "{}", a.name);
        }
    }

    #[test]
    fn unknown_files_are_not_found() {
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("nope.js").status(), StatusCode::NOT_FOUND);
        let ok = serve("app.js");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/javascript; charset=utf-8"
        );
        assert!(ok.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
