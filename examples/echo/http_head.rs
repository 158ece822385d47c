//! The status and headers of an echo response (items 4 and 5 of
//! `contract.rs`, and `Content-Type: text/plain`) on an `http::Response`:
//! what `http_echo` and `axum_echo` share.

use http::{HeaderName, HeaderValue, Response, StatusCode, header};

use crate::contract::Ask;

/// A response with `body`, and the status and headers `ask` wants.
pub(crate) fn response<B>(ask: &Ask<'_>, body: B) -> Response<B> {
    let mut res = Response::new(body);
    if let Some(code) = ask.status.and_then(|c| StatusCode::from_u16(c).ok()) {
        *res.status_mut() = code;
    }
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Some((name, value)) = ask.header {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(n, v);
        }
    }
    res
}
