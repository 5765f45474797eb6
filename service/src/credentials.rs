//! Provider credentials: a tenant's own API key and base URL for each provider, stored as
//! Fernet tokens bound to the tenant, and the choice between them and the platform's key.

use chrono::Utc;
use entity::{Role, provider_credential};
use providers::{ApiKey, ProviderError, ProviderKind, outbound::AddressPolicy};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use serde_json::json;
use tracing::{error, info};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, Secret, TenantId,
    audit::{self, Action, Target, TargetType},
    chat::provider_available,
    error::{ServiceError, ServiceResult},
    validation,
};

/// Maximum length of an API key, in characters.
pub const MAX_API_KEY_CHARS: usize = 500;
/// Maximum length of a base URL, in characters.
pub const MAX_BASE_URL_CHARS: usize = 2_000;
/// Number of trailing key characters shown again as the key's hint.
const KEY_HINT_CHARS: usize = 4;
/// Keys shorter than this get an empty hint, so that a hint never shows more than a third
/// of a key.
const MIN_KEY_CHARS_FOR_HINT: usize = 12;
/// Rows read per query while re-encrypting.
const REENCRYPT_BATCH_ROWS: u64 = 500;

pub struct SetCredential {
    pub provider: ProviderKind,
    pub api_key: Secret,
    /// Endpoint of the provider's API, or `None` for the platform's URL of the provider.
    pub base_url: Option<String>,
}

/// A tenant's decrypted credential for one provider.
#[derive(Debug, Clone)]
pub struct TenantCredential {
    pub api_key: Secret,
    pub base_url: Option<String>,
}

/// The client, base URL and API key that an adapter sends its requests with.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The guarded client for a URL the tenant chose, the shared client otherwise.
    pub client: reqwest::Client,
    pub base_url: String,
    pub api_key: ApiKey,
    pub owner: EndpointOwner,
}

/// Whose API key an endpoint sends, which decides whether its failures count against the
/// health of the platform's provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointOwner {
    /// The platform's key from the configuration.
    Platform,
    /// The tenant's own credential, with the platform's URL or the tenant's.
    Tenant,
}

/// Counts of [`reencrypt_all`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    pub reencrypted: u64,
    /// Rows that no configured key decrypts or that name another tenant, left unchanged.
    pub failed: u64,
}

/// Stores the tenant's key for a provider, replacing an earlier one. Needs the admin role.
pub async fn set(
    platform: &Platform,
    ctx: &RequestContext,
    input: SetCredential,
) -> ServiceResult<provider_credential::Model> {
    ctx.require(Role::Admin)?;
    check_provider(platform, input.provider)?;
    let api_key = check_api_key(&input.api_key)?;
    let base_url = check_base_url(platform.guarded_http.policy(), input.base_url.as_deref())?;

    let now = Utc::now();
    let credential = provider_credential::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        provider: Set(input.provider.as_str().to_owned()),
        encrypted_key: Set(platform.cipher.encrypt(ctx.tenant(), &api_key)),
        key_hint: Set(key_hint(api_key.expose())),
        base_url: Set(base_url),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // PostgreSQL runs INSERT .. ON CONFLICT DO UPDATE as one atomic insert or update, so two
    // admins setting a key at once do not fail on the unique (tenant_id, provider) index.
    let upsert = OnConflict::columns([
        provider_credential::Column::TenantId,
        provider_credential::Column::Provider,
    ])
    .update_columns([
        provider_credential::Column::EncryptedKey,
        provider_credential::Column::KeyHint,
        provider_credential::Column::BaseUrl,
        provider_credential::Column::UpdatedAt,
    ])
    .to_owned();
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let saved = provider_credential::Entity::insert(credential)
        .on_conflict(upsert)
        .exec_with_returning(&txn)
        .await?;
    // The key and its hint stay out of the audit log.
    let summary = json!({ "provider": saved.provider, "baseUrl": saved.base_url });
    audit::record(
        &txn,
        ctx,
        Action::ProviderCredentialSet,
        Target::new(TargetType::ProviderCredential, saved.id),
        summary,
    )
    .await?;
    txn.commit().await?;

    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        provider = input.provider.as_str(),
        "provider credential set"
    );
    Ok(saved)
}

/// Deletes the tenant's key for a provider, so that the platform's key applies again. Needs
/// the admin role.
pub async fn delete(
    platform: &Platform,
    ctx: &RequestContext,
    provider: ProviderKind,
) -> ServiceResult<ProviderKind> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let deleted = provider_credential::Entity::delete_many()
        .filter(provider_credential::Column::TenantId.eq(ctx.tenant()))
        .filter(provider_credential::Column::Provider.eq(provider.as_str()))
        .exec_with_returning(&txn)
        .await?;
    let Some(credential) = deleted.into_iter().next() else {
        return Err(ServiceError::not_found("provider credential"));
    };
    audit::record(
        &txn,
        ctx,
        Action::ProviderCredentialDelete,
        Target::new(TargetType::ProviderCredential, credential.id),
        json!({ "provider": provider.as_str() }),
    )
    .await?;
    txn.commit().await?;
    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        provider = provider.as_str(),
        "provider credential deleted"
    );
    Ok(provider)
}

/// Lists the tenant's credentials, at most one per provider, ordered by provider name.
pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
) -> ServiceResult<Vec<provider_credential::Model>> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let credentials = provider_credential::Entity::find()
        .filter(provider_credential::Column::TenantId.eq(ctx.tenant()))
        .order_by_asc(provider_credential::Column::Provider)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(credentials)
}

/// Returns the endpoint for the tenant's requests to `kind`: the tenant's own key (and base
/// URL, when it set one) if it stored a credential, else the platform's key and URL. `db`
/// is a transaction of the tenant's.
pub async fn endpoint_for<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    tenant_id: TenantId,
    kind: ProviderKind,
) -> ServiceResult<Endpoint> {
    let Some(credential) = find(platform, db, tenant_id, kind).await? else {
        let (api_key, base_url) = platform_default(platform, kind)?;
        return Ok(Endpoint {
            client: platform.http.clone(),
            base_url: base_url.to_owned(),
            api_key: ApiKey::new(api_key.map_or("", Secret::expose)),
            owner: EndpointOwner::Platform,
        });
    };

    let api_key = ApiKey::new(credential.api_key.expose());
    match credential.base_url {
        // The host was checked when the URL was stored, and is checked again here because
        // ALLOWED_PRIVATE_NETWORKS may have changed since.
        Some(base_url) => {
            let client = platform
                .guarded_http
                .client_for(&base_url)
                .map_err(ProviderError::from)?;
            Ok(Endpoint {
                client,
                base_url,
                api_key,
                owner: EndpointOwner::Tenant,
            })
        }
        None => {
            let (_, base_url) = platform_default(platform, kind)?;
            Ok(Endpoint {
                client: platform.http.clone(),
                base_url: base_url.to_owned(),
                api_key,
                owner: EndpointOwner::Tenant,
            })
        }
    }
}

/// Returns the platform's key (if configured) and base URL of `kind` from the settings.
fn platform_default(
    platform: &Platform,
    kind: ProviderKind,
) -> ServiceResult<(Option<&Secret>, &str)> {
    let endpoint = platform.settings.providers.get(kind);
    Ok((endpoint.api_key.as_ref(), endpoint.base_url.as_str()))
}

/// Loads and decrypts the tenant's credential for `kind`, if it stored one.
async fn find<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    tenant_id: TenantId,
    kind: ProviderKind,
) -> ServiceResult<Option<TenantCredential>> {
    // NOTE: this indexed query runs once per chat request. A per-process cache keyed by
    // (tenant, provider) would go here. `set` and `delete` would then have to evict the
    // entry on every api process, for example through Redis pub/sub.
    let row = provider_credential::Entity::find()
        .filter(provider_credential::Column::TenantId.eq(tenant_id.as_uuid()))
        .filter(provider_credential::Column::Provider.eq(kind.as_str()))
        .one(db)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };

    let api_key = platform
        .cipher
        .decrypt(row.tenant_id, &row.encrypted_key)
        .map_err(|error| {
            ServiceError::internal(format!(
                "provider credential {} of tenant {} cannot be used: {error}",
                row.id, row.tenant_id
            ))
        })?;
    Ok(Some(TenantCredential {
        api_key,
        base_url: row.base_url,
    }))
}

/// Encrypts every stored credential again with the first key of `ENCRYPTION_KEY`, so that
/// older keys can be removed afterwards. Rows that do not decrypt are counted and left as
/// they are.
pub async fn reencrypt_all(platform: &Platform) -> ServiceResult<ReencryptReport> {
    let mut report = ReencryptReport::default();
    let mut after: Option<Uuid> = None;
    loop {
        let mut query = provider_credential::Entity::find()
            .order_by_asc(provider_credential::Column::Id)
            .limit(REENCRYPT_BATCH_ROWS);
        if let Some(last_id) = after {
            query = query.filter(provider_credential::Column::Id.gt(last_id));
        }
        // Every tenant's credentials, one batch per transaction.
        let txn = platform.cross_tenant_tx().await?;
        let rows = query.all(&txn).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = Some(last.id);

        for row in rows {
            match platform.cipher.reencrypt(row.tenant_id, &row.encrypted_key) {
                Ok(token) => {
                    // Matching the old token skips a row that an admin replaced meanwhile.
                    let result = provider_credential::Entity::update_many()
                        .col_expr(
                            provider_credential::Column::EncryptedKey,
                            Expr::value(token),
                        )
                        .filter(provider_credential::Column::Id.eq(row.id))
                        .filter(provider_credential::Column::EncryptedKey.eq(row.encrypted_key))
                        .exec(&txn)
                        .await?;
                    report.reencrypted += result.rows_affected;
                }
                Err(cause) => {
                    error!(
                        credential.id = %row.id,
                        tenant.id = %row.tenant_id,
                        error = %cause,
                        "provider credential does not decrypt and was left unchanged"
                    );
                    report.failed += 1;
                }
            }
        }
        txn.commit().await?;
    }
    info!(
        reencrypted = report.reencrypted,
        failed = report.failed,
        "provider credentials re-encrypted"
    );
    Ok(report)
}

fn check_provider(platform: &Platform, provider: ProviderKind) -> ServiceResult<()> {
    if provider_available(platform, provider) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "provider",
            format!("provider {provider} is not available on this platform"),
        ))
    }
}

/// Trims the key and checks its length and characters. Messages never repeat the key.
fn check_api_key(api_key: &Secret) -> ServiceResult<Secret> {
    let key = api_key.expose().trim();
    if key.is_empty() {
        return Err(ServiceError::invalid("apiKey", "must not be empty"));
    }
    validation::check_length("apiKey", key, MAX_API_KEY_CHARS)?;
    // The key travels in an HTTP header, where spaces and control characters break it.
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ServiceError::invalid(
            "apiKey",
            "must contain only visible ASCII characters, without spaces",
        ));
    }
    Ok(Secret::new(key))
}

/// Checks an optional base URL: http or https, no user name, password, query or fragment,
/// and no IP-literal host in a blocked range. Returns it without a trailing slash.
fn check_base_url(policy: &AddressPolicy, base_url: Option<&str>) -> ServiceResult<Option<String>> {
    let Some(text) = validation::optional_text("baseUrl", base_url, MAX_BASE_URL_CHARS)? else {
        return Ok(None);
    };
    let invalid = |message: &str| ServiceError::invalid("baseUrl", message);

    let url = reqwest::Url::parse(&text)
        .map_err(|error| invalid(&format!("must be an absolute http or https URL ({error})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not contain a query or fragment"));
    }
    policy
        .check_url(&url)
        .map_err(|error| invalid(&format!("{error}; use a public address")))?;

    // The parsed form is stored, so that the host checked here is the host used later.
    Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
}

/// Returns the last [`KEY_HINT_CHARS`] characters of a key long enough to have a hint.
fn key_hint(key: &str) -> String {
    let length = key.chars().count();
    if length < MIN_KEY_CHARS_FOR_HINT {
        return String::new();
    }
    key.chars().skip(length - KEY_HINT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hint_shows_last_four_characters() {
        assert_eq!(key_hint("sk-proj-abcdefgh1234"), "1234");
        assert_eq!(key_hint("abcdefghijkl"), "ijkl");
    }

    #[test]
    fn key_hint_empty_for_short_keys() {
        assert_eq!(key_hint("abcdefghijk"), "");
        assert_eq!(key_hint("key"), "");
    }

    #[test]
    fn api_key_trimmed_and_checked() {
        let key = check_api_key(&Secret::new("  sk-test-123  ")).unwrap();
        assert_eq!(key.expose(), "sk-test-123");

        let empty = check_api_key(&Secret::new("   ")).unwrap_err();
        assert_eq!(empty.to_string(), "apiKey: must not be empty");
        let long = check_api_key(&Secret::new("k".repeat(501))).unwrap_err();
        assert_eq!(
            long.to_string(),
            "apiKey: must be at most 500 characters (got 501)"
        );
        assert!(check_api_key(&Secret::new("k".repeat(500))).is_ok());
        let spaced = check_api_key(&Secret::new("sk test")).unwrap_err();
        assert!(spaced.to_string().starts_with("apiKey: "), "{spaced}");
        assert!(check_api_key(&Secret::new("sk-\u{7f}")).is_err());
    }

    fn base_url_error(text: &str) -> String {
        check_base_url(&AddressPolicy::default(), Some(text))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn base_url_normalised() {
        let policy = AddressPolicy::default();
        let stored = check_base_url(&policy, Some(" https://Proxy.Example.com/v1/ ")).unwrap();
        assert_eq!(stored.as_deref(), Some("https://proxy.example.com/v1"));
        assert_eq!(check_base_url(&policy, Some("  ")).unwrap(), None);
        assert_eq!(check_base_url(&policy, None).unwrap(), None);
    }

    #[test]
    fn base_url_rejections_name_field() {
        let cases = [
            (
                "ftp://example.com",
                "baseUrl: must start with http:// or https://",
            ),
            (
                "example.com/v1",
                "baseUrl: must be an absolute http or https URL",
            ),
            (
                "https://user:pw@example.com",
                "baseUrl: must not contain a user name",
            ),
            (
                "https://example.com/v1?x=1",
                "baseUrl: must not contain a query",
            ),
            (
                "http://10.0.0.1/v1",
                "baseUrl: URL host 10.0.0.1 is in a blocked range",
            ),
        ];
        for (url, expected) in cases {
            let message = base_url_error(url);
            assert!(message.starts_with(expected), "{url}: {message}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_BASE_URL_CHARS));
        assert!(base_url_error(&long).starts_with("baseUrl: must be at most"));
    }
}
