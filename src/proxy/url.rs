//! Where a proxied call goes: the caller's path and query under the app's API base, with the
//! credentials' query parameters. A path that would leave the API base (`..`, encoded or not)
//! is refused, so the generic module reaches that base and nothing else of the host.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::error::ProxyError;

/// The URL to call, and the path under the API base that module rules are matched against.
#[derive(Debug)]
pub struct Destination {
    pub url: Url,
    pub relative_path: String,
}

pub fn destination(
    base: &str,
    path: &str,
    query: Option<&str>,
    credentials: &[(String, SecretString)],
) -> Result<Destination, ProxyError> {
    let base = Url::parse(base).map_err(|err| {
        ProxyError::bad_request(format!(
            "the connection's API base URL is not valid ({err}); edit the connection"
        ))
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
        return Err(ProxyError::bad_request(
            "the connection's API base URL is not an http(s) URL with a host",
        ));
    }
    let base_path = base.path().trim_end_matches('/').to_owned();
    let mut url = base.clone();
    url.set_path(&format!("{base_path}/{}", path.trim_start_matches('/')));
    let full = url.path().to_owned();
    let inside = full == base_path || full.starts_with(&format!("{base_path}/"));
    if !inside || url.origin() != base.origin() {
        return Err(ProxyError::forbidden(
            "the path leaves the app's API base, which is all the proxy reaches",
        ));
    }
    let relative_path = match &full[base_path.len()..] {
        "" => "/".to_owned(),
        rest => rest.to_owned(),
    };
    let mut pairs: Vec<String> = base.query().into_iter().map(str::to_owned).collect();
    if let Some(query) = query {
        // The caller's own parameters as sent, except any named like a credential parameter.
        pairs.extend(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .filter(|pair| {
                    let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
                    let name =
                        url::form_urlencoded::parse(name.as_bytes()).next().map(|(n, _)| n.into_owned());
                    !credentials.iter().any(|(credential, _)| Some(credential) == name.as_ref())
                })
                .map(str::to_owned),
        );
    }
    let mut added = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in credentials {
        added.append_pair(name, value.expose_secret());
    }
    let added = added.finish();
    if !added.is_empty() {
        pairs.push(added);
    }
    let joined = pairs.join("&");
    url.set_query((!joined.is_empty()).then_some(joined.as_str()));
    Ok(Destination { url, relative_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(base: &str, path: &str, query: Option<&str>) -> Result<Destination, ProxyError> {
        destination(base, path, query, &[("key".to_owned(), SecretString::from("s3cr&t"))])
    }

    #[test]
    fn paths_go_under_the_base_with_the_credentials() {
        let to = go("https://api.example.com/v1", "/items/7", Some("limit=5&key=mine")).unwrap();
        assert_eq!(to.url.as_str(), "https://api.example.com/v1/items/7?limit=5&key=s3cr%26t");
        assert_eq!(to.relative_path, "/items/7");
        let root = go("https://api.example.com/v1/", "/", None).unwrap();
        assert_eq!(root.relative_path, "/");
    }

    #[test]
    fn paths_cannot_climb_out_of_the_base() {
        for path in ["/../admin", "/%2e%2e/admin", "/a/../../admin", "/.%2E/admin"] {
            let refused = go("https://api.example.com/v1", path, None).unwrap_err();
            assert_eq!(refused.code, "FORBIDDEN", "{path}");
        }
        // Staying inside is fine, and `@` or `//` cannot change the host.
        assert_eq!(go("https://api.example.com/v1", "/a/../b", None).unwrap().relative_path, "/b");
        let odd = go("https://api.example.com", "//evil.example/x", None).unwrap();
        assert_eq!(odd.url.host_str(), Some("api.example.com"));
        let at = go("https://api.example.com", "/@evil.example", None).unwrap();
        assert_eq!(at.url.host_str(), Some("api.example.com"));
    }
}
