//! Reading bodies into memory under a limit.
//!
//! Request bodies are read whole or refused (413) before the handler runs. Response bodies are
//! read up to a cap for storage; a larger one is passed on without being stored, from the bytes
//! already read followed by the rest of the stream, so the client still gets all of it.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::body::BoxError;

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Longer than the limit (declared or actual).
    TooLarge,
    /// The stream failed (the client went away mid-upload, a protocol error).
    Failed(BoxError),
}

/// Reads a request body of at most `limit` bytes. A `Content-Length` above the limit is refused
/// before reading anything.
pub(crate) async fn read_request<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) || body.size_hint().lower() > limit as u64 {
        return Err(ReadError::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ReadError::TooLarge),
        Err(e) => Err(ReadError::Failed(e)),
    }
}

/// A response body after an attempt to read it for storage.
pub(crate) enum Collected<B> {
    /// Read whole, within the cap.
    Complete {
        data: Bytes,
        trailers: Option<HeaderMap>,
    },
    /// Over the cap: what was read, and the unread rest.
    Overflow { prefix: Bytes, rest: Pin<Box<B>> },
    /// The stream failed.
    Failed(BoxError),
}

/// Reads a response body for storage, up to `cap` bytes.
pub(crate) async fn read_response<B>(body: B, cap: usize) -> Collected<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    if body.size_hint().lower() > cap as u64 {
        return Collected::Overflow {
            prefix: Bytes::new(),
            rest: body,
        };
    }
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    let mut len = 0usize;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Err(e)) => return Collected::Failed(e.into()),
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                // Trailers end the body.
                let trailers = frame.into_trailers().ok();
                return Collected::Complete {
                    data: join(first, more),
                    trailers,
                };
            }
        };
        len += data.len();
        match (&mut first, &mut more) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut buf = BytesMut::with_capacity(head.len() + data.len());
                buf.extend_from_slice(head);
                buf.extend_from_slice(&data);
                more = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
        if len > cap {
            return Collected::Overflow {
                prefix: join(first, more),
                rest: body,
            };
        }
    }
    Collected::Complete {
        data: join(first, more),
        trailers: None,
    }
}

fn join(first: Option<Bytes>, more: Option<BytesMut>) -> Bytes {
    match (first, more) {
        (_, Some(buf)) => buf.freeze(),
        (Some(one), None) => one,
        (None, None) => Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{Full, StreamBody};

    use super::*;

    fn chunks(parts: &[&'static str]) -> impl Body<Data = Bytes, Error = std::io::Error> {
        let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn request_within_and_over_the_limit() {
        let ok = read_request(&HeaderMap::new(), chunks(&["ab", "cd"]), 4)
            .await
            .unwrap();
        assert_eq!(ok, "abcd");
        let over = read_request(&HeaderMap::new(), chunks(&["ab", "cde"]), 4).await;
        assert!(matches!(over, Err(ReadError::TooLarge)));
        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, "5".parse().unwrap());
        let refused = read_request(&declared, Full::new(Bytes::from_static(b"x")), 4).await;
        assert!(matches!(refused, Err(ReadError::TooLarge)));
    }

    #[tokio::test]
    async fn response_over_the_cap_keeps_every_byte() {
        let collected = read_response(chunks(&["ab", "cd", "ef", "gh"]), 3).await;
        let Collected::Overflow { prefix, rest } = collected else {
            panic!("expected an overflow");
        };
        assert_eq!(prefix, "abcd");
        let rest = rest.collect().await.unwrap().to_bytes();
        assert_eq!(rest, "efgh");
    }

    #[tokio::test]
    async fn response_within_the_cap_is_joined() {
        let Collected::Complete { data, trailers } = read_response(chunks(&["ab", "cd"]), 4).await
        else {
            panic!("expected a complete body");
        };
        assert_eq!(data, "abcd");
        assert!(trailers.is_none());
    }
}
