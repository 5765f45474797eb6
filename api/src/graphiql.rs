//! GraphiQL playground: the HTML page and the scripts and styles it loads, embedded in the
//! binary so that the page works without internet access.
//!
//! React, react-dom and GraphiQL are unmodified npm browser builds that
//! `scripts/vendor-graphiql.sh` copies into `api/assets/graphiql/vendor/`, with their
//! licences. `graphiql-init.js` and `graphiql-page.css` belong to this crate. The page
//! sends queries to `POST /graphql` and subscriptions to `/graphql/ws` on its own origin.

use std::hash::{DefaultHasher, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Path under which [`asset`] serves the files that the page loads.
pub const ASSET_PATH_PREFIX: &str = "/graphiql/assets/";

/// Page policy: scripts and styles only from the api itself, network requests only to
/// its own origin. CSP Level 3 lets `'self'` match `ws:` and `wss:` on the same host and
/// port. Browsers that implement only Level 2 block the subscription WebSocket. GraphiQL's
/// dialogs insert `<style>` elements with computed content, hence `'unsafe-inline'` for
/// styles, and its stylesheet embeds fonts as `data:` URLs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Assets are requested with a `?v=` content hash, so a changed file gets a new URL and
/// browsers may keep each version for a year.
const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file, served at [`ASSET_PATH_PREFIX`] followed by `name`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file the page loads, stylesheets first and scripts in the order they must run.
const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        body: include_bytes!("../assets/graphiql/vendor/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "graphiql-page.css",
        content_type: CSS,
        body: include_bytes!("../assets/graphiql/graphiql-page.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/graphiql/vendor/react/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/graphiql/vendor/react-dom/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/graphiql/vendor/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql-init.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/graphiql/graphiql-init.js"),
    },
];

static PAGE_HTML: LazyLock<String> = LazyLock::new(render_page);

/// GraphiQL page: the HTML that loads the vendored assets.
///
/// The page has no inline script; `graphiql-init.js` starts GraphiQL.
pub async fn page() -> impl IntoResponse {
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, Html(PAGE_HTML.as_str()))
}

/// Serves one vendored asset with its content type and a long cache lifetime.
///
/// Returns 404 for a name that is not embedded; the `?v=` query string is ignored.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = find_asset(&file) else {
        return (StatusCode::NOT_FOUND, "GraphiQL asset not found").into_response();
    };

    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(ASSET_CACHE_CONTROL),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (headers, asset.body).into_response()
}

fn find_asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// Builds the page, linking each asset with a hash of its content for cache busting.
fn render_page() -> String {
    let mut links = String::new();
    for asset in ASSETS {
        let url = format!(
            "{ASSET_PATH_PREFIX}{}?v={}",
            asset.name,
            content_hash(asset.body)
        );
        let link = if asset.content_type == CSS {
            format!("    <link rel=\"stylesheet\" href=\"{url}\">\n")
        } else {
            format!("    <script defer src=\"{url}\"></script>\n")
        };
        links.push_str(&link);
    }

    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Task Assistant GraphiQL</title>
    <link rel="icon" href="data:,">
{links}  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <noscript>GraphiQL needs JavaScript.</noscript>
  </body>
</html>
"#
    )
}

/// Hashes an asset for its `?v=` parameter. SipHash with fixed keys gives the same
/// value for the same bytes within one build, which is all cache busting needs.
fn content_hash(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    hasher.write(body);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_have_content() {
        for asset in ASSETS {
            assert!(!asset.body.is_empty(), "{} is empty", asset.name);
        }
    }

    #[test]
    fn asset_names_are_unique() {
        for (index, asset) in ASSETS.iter().enumerate() {
            let duplicate = ASSETS[index + 1..]
                .iter()
                .any(|other| other.name == asset.name);
            assert!(!duplicate, "{} is listed twice", asset.name);
        }
    }

    #[test]
    fn page_links_every_asset_once() {
        let page = render_page();
        for asset in ASSETS {
            let reference = format!("{ASSET_PATH_PREFIX}{}?v=", asset.name);
            assert_eq!(page.matches(&reference).count(), 1, "{reference}");
        }
    }

    #[test]
    fn page_runs_init_script_last() {
        let page = render_page();
        let init = page.find("graphiql-init.js").unwrap_or(0);
        let graphiql = page.find("graphiql.min.js").unwrap_or(usize::MAX);
        assert!(
            graphiql < init,
            "graphiql-init.js must load after graphiql.min.js"
        );
    }

    #[test]
    fn page_has_no_inline_script() {
        let page = render_page();
        let scripts = page.matches("<script").count();
        let external = page.matches("<script defer src=").count();
        assert_eq!(scripts, external);
    }

    #[test]
    fn content_hash_follows_content() {
        assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
        assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
        assert_eq!(content_hash(b"abc").len(), 16);
    }

    #[test]
    fn find_asset_rejects_unknown_names() {
        assert!(find_asset("graphiql.min.js").is_some());
        assert!(find_asset("graphiql.min.js.map").is_none());
        assert!(find_asset("../Cargo.toml").is_none());
        assert!(find_asset("").is_none());
    }
}
