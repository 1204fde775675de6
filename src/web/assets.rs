//! Static assets embedded in the binary, served with long-lived caching under a content-hash
//! version (`/static/app.css?v=…`), so a new build never serves a stale stylesheet.

use std::sync::OnceLock;

use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::auth::session_store::hex;
use crate::error::AppError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/app.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        name: "passkeys.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/passkeys.js"),
    },
];

fn versions() -> &'static Vec<String> {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| hex(&Sha256::digest(a.body))[..12].to_string())
            .collect()
    })
}

/// The versioned URL of an embedded asset.
pub fn asset_url(name: &str) -> String {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => format!("/static/{name}?v={}", versions()[i]),
        None => format!("/static/{name}"),
    }
}

/// Serves an embedded asset.
pub async fn serve(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let i = ASSETS
        .iter()
        .position(|a| a.name == name.as_str())
        .ok_or(AppError::NotFound)?;
    let asset = &ASSETS[i];
    let current = req.query_string() == format!("v={}", versions()[i]);
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header(("Cache-Control", cache))
        .insert_header(("ETag", format!("\"{}\"", versions()[i])))
        .body(asset.body))
}
