//! Reading request bodies: at most a limit, kept as they came when they arrive in one piece.
//! The edge reads every body it checks this way, and verify takes its JSON body with it.

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use super::ApiError;
use super::error::json_error;

/// Why a body was not read.
#[derive(Debug)]
pub enum Unread {
    /// Larger than the limit: declared so (`Content-Length`), or found so while reading.
    TooLarge { declared: Option<usize> },
    /// The connection failed while it was read.
    Failed(PayloadError),
}

/// The body, at most `limit` bytes. A body that arrives in one piece, as the usual small form
/// or JSON does, is kept as it came: no buffer, no copy.
pub async fn read_limited(
    http: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::Bytes, Unread> {
    let declared = http
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let too_large = Unread::TooLarge { declared };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large);
    }
    let first = match payload.next().await {
        None => return Ok(web::Bytes::new()),
        Some(chunk) => chunk.map_err(Unread::Failed)?,
    };
    if first.len() > limit {
        return Err(too_large);
    }
    let Some(mut next) = payload.next().await else {
        return Ok(first);
    };
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).clamp(first.len(), limit));
    body.extend_from_slice(&first);
    loop {
        let chunk = next.map_err(Unread::Failed)?;
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
        match payload.next().await {
            Some(more) => next = more,
            None => return Ok(body.freeze()),
        }
    }
}

/// A JSON body taken as `web::Json` with `error::json_config` takes it, by the same steps with
/// the same errors (the content type, the declared length, the length read, the JSON), without
/// the extractor's own costs (an 8 KiB buffer and a copy for every body, a parse of a content
/// type that is plainly `application/json`). For `POST /api/v1/verify`, where they were a
/// tenth of the request.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    use actix_web::HttpMessage;
    use actix_web::http::header::CONTENT_TYPE;
    let plainly_json = req
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let json = plainly_json
        || req.mime_type().ok().flatten().is_some_and(|mime| {
            mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON)
        });
    if !json {
        return Err(json_error(&JsonPayloadError::ContentType));
    }
    let limit = super::BODY_LIMIT;
    let mut payload = payload.into_inner();
    let body = read_limited(req, &mut payload, limit)
        .await
        .map_err(|unread| {
            json_error(&match unread {
                Unread::TooLarge {
                    declared: Some(length),
                } if length > limit => JsonPayloadError::OverflowKnownLength { length, limit },
                Unread::TooLarge { .. } => JsonPayloadError::Overflow { limit },
                Unread::Failed(e) => JsonPayloadError::Payload(e),
            })
        })?;
    serde_json::from_slice(&body).map_err(|e| json_error(&JsonPayloadError::Deserialize(e)))
}
