//! Media types of GraphQL over HTTP: the response format negotiated from `Accept`, and the
//! request `Content-Type` check that also keeps cross-site forms from running operations.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// `application/graphql-response+json`, the GraphQL-over-HTTP response media type.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Headers that make a browser send a CORS preflight first, and that a POST with a
/// content type a cross-site form can send must carry. Any `x-` header would also force a
/// preflight, but proxies add some of them (`X-Forwarded-For`), so they prove nothing.
pub const PREFLIGHT_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("apollo-require-preflight"),
    HeaderName::from_static("x-apollo-operation-name"),
];

/// Content types that browsers send cross-site without a CORS preflight (the CORS-safelisted
/// request content types). A POST without `Content-Type` is treated the same.
const FORM_CONTENT_TYPES: [&str; 3] = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
];

/// Media type of a GraphQL response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/graphql-response+json`: request errors get status 400.
    GraphqlResponseJson,
    /// `application/json`, the legacy format: request errors get status 200.
    Json,
}

impl ResponseFormat {
    pub fn content_type(self) -> HeaderValue {
        match self {
            Self::GraphqlResponseJson => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
            Self::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }
}

/// Picks the response format from the `Accept` headers, or `None` when neither format is
/// acceptable.
///
/// A missing or empty `Accept` means `application/json`. Otherwise the format with the
/// higher quality wins. On a tie `application/graphql-response+json` wins when the client
/// named it, and `application/json` wins when only wildcards matched, so that `*/*`
/// still gets `application/json` as the specification recommends for legacy clients.
pub fn negotiate(headers: &HeaderMap) -> Option<ResponseFormat> {
    let ranges = media_ranges(headers, header::ACCEPT);
    if ranges.is_empty() {
        return Some(ResponseFormat::Json);
    }
    let graphql = quality(&ranges, GRAPHQL_RESPONSE_JSON);
    let json = quality(&ranges, JSON);
    if graphql.value == 0.0 && json.value == 0.0 {
        return None;
    }
    let format = if graphql.value > json.value || (graphql.value == json.value && graphql.exact) {
        ResponseFormat::GraphqlResponseJson
    } else {
        ResponseFormat::Json
    };
    Some(format)
}

/// Checks whether `Accept` names `text/html`, as browsers do when they navigate to a page.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    media_ranges(headers, header::ACCEPT)
        .iter()
        .any(|range| range.essence == "text/html" && range.quality > 0.0)
}

/// The reason a POST's `Content-Type` was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentTypeRejection {
    /// A content type that a cross-site form can send, without a preflight header.
    CrossSiteRequest,
    /// Any content type other than JSON in UTF-8; the value as sent, or `None`.
    Unsupported(Option<String>),
}

/// Accepts `application/json` (in UTF-8, the default). A content type that a cross-site
/// form can send is rejected as [`ContentTypeRejection::CrossSiteRequest`] unless the
/// request carries one of [`PREFLIGHT_HEADERS`], and then as unsupported like every other
/// type, so such a request never runs an operation.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ContentTypeRejection> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let parsed = raw.as_deref().map(MediaRange::parse);
    let essence = parsed.as_ref().map(|range| range.essence.as_str());
    let is_form = match essence {
        None | Some("") => true,
        Some(essence) => FORM_CONTENT_TYPES.contains(&essence),
    };
    if is_form && !has_preflight_header(headers) {
        return Err(ContentTypeRejection::CrossSiteRequest);
    }
    let Some(range) = parsed.filter(|range| range.essence == JSON) else {
        return Err(ContentTypeRejection::Unsupported(raw));
    };
    match range.charset.as_deref() {
        None => Ok(()),
        Some(charset) if charset.eq_ignore_ascii_case("utf-8") => Ok(()),
        Some(_) => Err(ContentTypeRejection::Unsupported(raw)),
    }
}

fn has_preflight_header(headers: &HeaderMap) -> bool {
    PREFLIGHT_HEADERS.iter().any(|name| {
        headers
            .get(name)
            .is_some_and(|value| !value.as_bytes().is_empty())
    })
}

/// One entry of an `Accept` or `Content-Type` header.
#[derive(Debug, Clone, PartialEq)]
struct MediaRange {
    /// `type/subtype` in lowercase, such as `application/json` or `*/*`.
    essence: String,
    quality: f32,
    charset: Option<String>,
}

impl MediaRange {
    /// Parses one media range. A `q` that is not a number in 0..=1 counts as 0, so a
    /// malformed range never gets chosen.
    fn parse(text: &str) -> Self {
        let mut parts = text.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut quality = 1.0;
        let mut charset = None;
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    quality = value
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0);
                }
                "charset" => charset = Some(value.to_owned()),
                _ => {}
            }
        }
        Self {
            essence,
            quality,
            charset,
        }
    }
}

/// Collects every media range of every `name` header, in order.
fn media_ranges(headers: &HeaderMap, name: HeaderName) -> Vec<MediaRange> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(',')
                .map(str::trim)
                .filter(|range| !range.is_empty())
                .map(MediaRange::parse)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The quality `Accept` gives a media type, from its most specific matching range.
struct Quality {
    value: f32,
    /// The range named the media type itself, not a wildcard.
    exact: bool,
}

fn quality(ranges: &[MediaRange], media_type: &str) -> Quality {
    let main_type = media_type.split('/').next().unwrap_or("");
    let wildcard_subtype = format!("{main_type}/*");
    let mut best: Option<(u8, f32)> = None;
    for range in ranges {
        let specificity = if range.essence == media_type {
            3
        } else if range.essence == wildcard_subtype {
            2
        } else if range.essence == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(seen, _)| specificity > seen) {
            best = Some((specificity, range.quality));
        }
    }
    match best {
        Some((specificity, value)) => Quality {
            value,
            exact: specificity == 3,
        },
        None => Quality {
            value: 0.0,
            exact: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn accept(value: &str) -> Option<ResponseFormat> {
        negotiate(&headers(&[(header::ACCEPT, value)]))
    }

    #[test]
    fn negotiation_follows_accept() {
        use ResponseFormat::{GraphqlResponseJson, Json};
        let cases = [
            (
                "application/graphql-response+json",
                Some(GraphqlResponseJson),
            ),
            ("application/json", Some(Json)),
            (
                "application/graphql-response+json, application/json",
                Some(GraphqlResponseJson),
            ),
            (
                "application/graphql-response+json;q=0.9, application/json",
                Some(Json),
            ),
            (
                "application/json;q=0.5, application/graphql-response+json;q=0.8",
                Some(GraphqlResponseJson),
            ),
            ("*/*", Some(Json)),
            ("application/*", Some(Json)),
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Some(Json),
            ),
            ("application/json; charset=utf-8", Some(Json)),
            ("*/*, application/json;q=0", Some(GraphqlResponseJson)),
            ("text/html", None),
            ("application/json;q=0", None),
            ("application/json;q=high", None),
        ];
        for (value, expected) in cases {
            assert_eq!(accept(value), expected, "Accept: {value}");
        }
    }

    #[test]
    fn missing_or_empty_accept_means_json() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(ResponseFormat::Json));
        assert_eq!(accept(""), Some(ResponseFormat::Json));
    }

    #[test]
    fn accept_split_over_headers_read_whole() {
        let map = headers(&[
            (header::ACCEPT, "text/html"),
            (header::ACCEPT, "application/graphql-response+json"),
        ]);
        assert_eq!(negotiate(&map), Some(ResponseFormat::GraphqlResponseJson));
    }

    #[test]
    fn html_detected_for_browsers() {
        let browser = headers(&[(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")]);
        assert!(accepts_html(&browser));
        assert!(!accepts_html(&headers(&[(header::ACCEPT, "*/*")])));
        assert!(!accepts_html(&HeaderMap::new()));
    }

    #[test]
    fn json_content_type_accepted() {
        for value in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            let map = headers(&[(header::CONTENT_TYPE, value)]);
            assert_eq!(check_content_type(&map), Ok(()), "{value}");
        }
    }

    #[test]
    fn form_content_types_need_preflight_header() {
        for value in [
            None,
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let mut map = HeaderMap::new();
            if let Some(value) = value {
                map.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            }
            assert_eq!(
                check_content_type(&map),
                Err(ContentTypeRejection::CrossSiteRequest),
                "{value:?}"
            );
            map.insert(
                PREFLIGHT_HEADERS[0].clone(),
                HeaderValue::from_static("true"),
            );
            assert_eq!(
                check_content_type(&map),
                Err(ContentTypeRejection::Unsupported(value.map(str::to_owned))),
                "{value:?} with a preflight header"
            );
        }
    }

    #[test]
    fn other_content_types_unsupported() {
        for value in [
            "application/xml",
            "application/graphql",
            "application/json; charset=latin1",
        ] {
            let map = headers(&[(header::CONTENT_TYPE, value)]);
            assert_eq!(
                check_content_type(&map),
                Err(ContentTypeRejection::Unsupported(Some(value.to_owned()))),
                "{value}"
            );
        }
    }

    #[test]
    fn forwarded_header_is_no_preflight_proof() {
        let map = headers(&[
            (header::CONTENT_TYPE, "text/plain"),
            (HeaderName::from_static("x-forwarded-for"), "192.0.2.1"),
        ]);
        assert_eq!(
            check_content_type(&map),
            Err(ContentTypeRejection::CrossSiteRequest)
        );
    }
}
