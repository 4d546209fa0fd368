//! Which headers cross the proxy. Toward the provider: not the caller's `Authorization` or
//! cookies (Plugboard's token and the caller's session are not the provider's business), not
//! hop-by-hop headers (RFC 9110 §7.6.1) nor those the caller's `Connection` header names, and
//! no `Plugboard-*` header. Back to the caller: everything but hop-by-hop headers and
//! `Set-Cookie` (a runner has no session with the provider through us).

use reqwest::header::{HeaderMap, HeaderName};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Set by the proxy itself from the body or the URL, never copied.
const FRAMING: [&str; 3] = ["content-length", "host", "expect"];

/// The caller's headers that go on to the provider.
pub fn toward_provider(headers: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let text = name.as_str();
        let dropped = HOP_BY_HOP.contains(&text)
            || FRAMING.contains(&text)
            || text == "authorization"
            || text == "cookie"
            || text.starts_with("plugboard-")
            || listed.contains(name);
        if !dropped {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// The provider's headers that go back to the caller.
pub fn toward_caller(headers: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let text = name.as_str();
        let dropped = HOP_BY_HOP.contains(&text)
            || text == "content-length"
            || text == "set-cookie"
            || text == "set-cookie2"
            || text.starts_with("plugboard-")
            || listed.contains(name);
        if !dropped {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// The headers a `Connection` header names as hop-by-hop.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn secrets_sessions_and_hop_by_hop_headers_stay_behind() {
        let sent = map(&[
            ("authorization", "Bearer pbs_x"),
            ("cookie", "session=1"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("plugboard-connection", "id"),
            ("te", "trailers"),
            ("host", "plugboard"),
            ("accept", "application/json"),
            ("x-custom", "kept"),
        ]);
        let kept = toward_provider(&sent);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept", "x-custom"]);
    }

    #[test]
    fn cookies_set_by_the_provider_are_not_returned() {
        let answered = map(&[
            ("set-cookie", "sid=1"),
            ("content-type", "text/plain"),
            ("transfer-encoding", "chunked"),
            ("x-ratelimit-remaining", "9"),
        ]);
        let kept = toward_caller(&answered);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "x-ratelimit-remaining"]);
    }
}
