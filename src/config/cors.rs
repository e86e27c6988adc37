//! `CORS_ALLOW_ORIGINS`: which other origins' pages may read the proxy's
//! answers in a browser.

use url::Url;

use super::parse::Raw;
use super::ConfigError;

/// The origins allowed to read answers cross-origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all (the default): browsers keep other origins'
    /// pages from reading answers.
    #[default]
    None,
    /// `*`: any origin.
    Any,
    /// These origins, as browsers write them in `Origin` (`scheme://host`
    /// or `scheme://host:port`, lower case, no default port).
    List(Vec<String>),
}

impl CorsOrigins {
    /// Whether a request's `Origin` header names an allowed origin.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            CorsOrigins::None => false,
            CorsOrigins::Any => true,
            CorsOrigins::List(list) => list.iter().any(|allowed| allowed == origin),
        }
    }
}

const EXPECTED: &str = "empty, *, or comma-separated origins such as https://app.example.com or http://localhost:3000 (scheme, host and port only)";

pub(super) fn parse_cors(raw: Raw) -> Result<CorsOrigins, ConfigError> {
    let value = raw.value.trim();
    if value.is_empty() {
        return Ok(CorsOrigins::None);
    }
    if value == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut list = Vec::new();
    for item in value.split(',').map(str::trim) {
        let origin = origin_of(item).ok_or_else(|| raw.error(EXPECTED))?;
        if !list.contains(&origin) {
            list.push(origin);
        }
    }
    Ok(CorsOrigins::List(list))
}

/// `item` as browsers serialise an origin, if it is one: http or https, a
/// host, no user, path, query or fragment.
fn origin_of(item: &str) -> Option<String> {
    let url = Url::parse(item).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !item.ends_with('/');
    plain.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<CorsOrigins, ConfigError> {
        parse_cors(Raw {
            name: "CORS_ALLOW_ORIGINS",
            value: value.to_owned(),
        })
    }

    #[test]
    fn origins_are_read_as_browsers_write_them() {
        assert_eq!(parse(" "), Ok(CorsOrigins::None));
        assert_eq!(parse("*"), Ok(CorsOrigins::Any));
        let list = parse("https://App.Example.com, http://localhost:3000,http://a.test:80")
            .expect("valid");
        assert_eq!(
            list,
            CorsOrigins::List(vec![
                "https://app.example.com".to_owned(),
                "http://localhost:3000".to_owned(),
                "http://a.test".to_owned(),
            ])
        );
        assert!(list.allows("http://localhost:3000"));
        assert!(!list.allows("http://localhost:3001"));
        assert!(!CorsOrigins::None.allows("http://localhost:3000"));
    }

    #[test]
    fn anything_but_an_origin_is_refused_naming_the_variable() {
        for bad in [
            "example.com",
            "https://example.com/",
            "https://example.com/app",
            "ftp://example.com",
            "https://user:pw@example.com",
            "*, https://example.com",
            "https://example.com,",
            "https://example.com?x",
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.variable, "CORS_ALLOW_ORIGINS");
            assert!(err.to_string().contains("CORS_ALLOW_ORIGINS"), "{err}");
        }
    }
}
