//! Response cache: completed replies kept in Redis under a hash of everything that shapes
//! them, so that an identical request of the same tenant is answered without a provider call.
//!
//! The key is a SHA-256 hash over the tenant, the provider, the model, every generation
//! parameter, the tool definitions and the full message list, and the tenant's id is also a
//! part of the Redis key's path, so two tenants never share an entry. Only a reply that one
//! model call completed normally is stored. A Redis failure counts as a miss or a skipped
//! store and never fails the reply.

use std::time::Duration;

use entity::{FinishReason, MessageStatus, ResponseCacheLookup, agent};
use providers::{ChatMessage, ChatRequest, ImageInput, ProviderKind, Usage};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{info, warn};
use uuid::Uuid;

use super::{
    budget,
    events::{MessageOutcome, Publisher},
    generation::{EarlierSteps, Generation},
    persist,
};
use crate::{Platform, TenantId, error::ServiceResult, metrics};

/// Version of the key's serialization. Changing what the key covers or how it is written
/// needs a new version, so that entries written in the old form are never read.
const KEY_FORMAT_VERSION: u32 = 1;

/// Metrics label of this cache.
const METRICS_LABEL: &str = "response";

/// The Redis key under which a reply is looked up and stored, and its time-to-live.
#[derive(Debug, Clone)]
pub struct CacheSlot {
    /// Redis key: `<prefix>:response-cache:<tenant id>:<hex SHA-256>`.
    pub key: String,
    pub ttl: Duration,
}

/// A completed reply as stored in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedReply {
    /// The text in the pieces the provider streamed, replayed as one delta each.
    pub deltas: Vec<String>,
    pub finish_reason: FinishReason,
    /// Usage of the model call that produced the reply.
    pub usage: Usage,
    /// Whether `usage` was estimated because the provider reported none.
    pub estimated: bool,
}

/// Returns how long the reply is cached, or `None` when the cache is off for it.
/// `requested` is the request's `cache` flag: `None` follows the agent's setting, `true`
/// caches with the agent's time-to-live or else the platform's, and `false` bypasses the
/// cache.
pub(crate) fn ttl_for(
    platform: &Platform,
    agent: Option<&agent::Model>,
    requested: Option<bool>,
) -> Option<Duration> {
    let agent_ttl = agent
        .and_then(|agent| agent.response_cache_ttl_seconds)
        .and_then(|seconds| u64::try_from(seconds).ok())
        .map(Duration::from_secs);
    match requested {
        Some(false) => None,
        Some(true) => Some(agent_ttl.unwrap_or(platform.settings.response_cache_ttl)),
        None => agent_ttl,
    }
}

/// Builds the cache slot of `request` sent by `tenant_id` to `provider`.
pub(crate) fn slot(
    platform: &Platform,
    tenant_id: TenantId,
    provider: ProviderKind,
    request: &ChatRequest,
    ttl: Duration,
) -> CacheSlot {
    let tenant = tenant_id.as_uuid().to_string();
    let hash = request_hash(tenant_id.as_uuid(), provider, request);
    CacheSlot {
        key: platform.redis.key(&["response-cache", &tenant, &hash]),
        ttl,
    }
}

/// Hashes the canonical JSON form of everything that shapes a reply, as lowercase hex.
/// Every field sits at a fixed position of a JSON array, so no two different requests have
/// the same serialization.
pub(crate) fn request_hash(
    tenant_id: Uuid,
    provider: ProviderKind,
    request: &ChatRequest,
) -> String {
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| json!([tool.name, tool.description, tool.parameters]))
        .collect();
    let messages: Vec<Value> = request.messages.iter().map(message_value).collect();
    let canonical = json!([
        KEY_FORMAT_VERSION,
        tenant_id.to_string(),
        provider.as_str(),
        request.model,
        request.system,
        request.temperature,
        request.max_tokens,
        request.stop,
        tools,
        messages,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

fn message_value(message: &ChatMessage) -> Value {
    let images: Vec<Value> = message
        .images
        .iter()
        .map(|image| match image {
            ImageInput::Url(url) => json!(["url", url]),
            ImageInput::Inline {
                media_type,
                data_base64,
            } => json!(["inline", media_type, data_base64]),
        })
        .collect();
    let tool_calls: Vec<Value> = message
        .tool_calls
        .iter()
        .map(|call| json!([call.id, call.name, call.arguments]))
        .collect();
    json!([
        message.role,
        message.content,
        images,
        tool_calls,
        message.tool_call_id,
        message.tool_name,
    ])
}

/// Reads the slot's reply. A missing entry, a Redis failure and an entry that does not
/// decode are all misses; the last two are logged.
pub(crate) async fn lookup(platform: &Platform, slot: &CacheSlot) -> Option<CachedReply> {
    let stored: redis::RedisResult<Option<String>> = async {
        let mut redis = platform.redis.shared().await?;
        redis.get(&slot.key).await
    }
    .await;
    let reply = match stored {
        Ok(Some(json)) => match serde_json::from_str::<CachedReply>(&json) {
            Ok(reply) => Some(reply),
            Err(error) => {
                warn!(%error, key = %slot.key, "response cache entry does not decode, treated as a miss");
                None
            }
        },
        Ok(None) => None,
        Err(error) => {
            warn!(%error, key = %slot.key, "response cache lookup failed, treated as a miss");
            None
        }
    };
    metrics::cache_lookup(METRICS_LABEL, reply.is_some());
    reply
}

/// Stores a reply that one model call completed, if it qualifies: it completed with finish
/// reason `stop` or `length`, without an error, and the provider reported or the generation
/// estimated its usage. A Redis failure is logged and the reply is not cached.
pub(crate) async fn store(
    platform: &Platform,
    slot: &CacheSlot,
    deltas: Vec<String>,
    outcome: &MessageOutcome,
) {
    let complete = outcome.status == MessageStatus::Completed
        && matches!(
            outcome.finish_reason,
            FinishReason::Stop | FinishReason::Length
        )
        && outcome.error.is_none();
    let (Some(input_tokens), Some(output_tokens)) = (outcome.input_tokens, outcome.output_tokens)
    else {
        return;
    };
    if !complete || deltas.is_empty() {
        return;
    }
    let reply = CachedReply {
        deltas,
        finish_reason: outcome.finish_reason,
        usage: Usage {
            input_tokens,
            output_tokens,
            cached_input_tokens: None,
            reasoning_tokens: None,
        },
        estimated: outcome.usage_estimated,
    };
    let stored = async {
        let json = serde_json::to_string(&reply).map_err(|error| {
            redis::RedisError::from((
                redis::ErrorKind::Client,
                "encoding the cached reply",
                error.to_string(),
            ))
        })?;
        let mut redis = platform.redis.shared().await?;
        redis
            .set_ex::<_, _, ()>(&slot.key, json, slot.ttl.as_secs().max(1))
            .await
    }
    .await;
    if let Err(error) = stored {
        warn!(%error, key = %slot.key, "storing the reply in the response cache failed");
    }
}

/// Delivers a cached reply like a live one: its deltas to the reply's stream, then the
/// message's final state and a usage record marked as a cache hit, with the original token
/// counts and no cost. The message reserved one request and no tokens when it was sent,
/// and that reservation is settled with no tokens and no cost, so a hit counts as a
/// request but not against the token and spend limits.
pub(super) async fn replay(
    platform: &Platform,
    generation: &Generation,
    publisher: &Publisher,
    cached: &CachedReply,
) -> ServiceResult<MessageOutcome> {
    for delta in &cached.deltas {
        publisher.delta(delta).await;
    }
    let content = cached.deltas.concat();
    let no_cost = Some(0);
    let closed = persist::close_message(
        platform,
        persist::ClosedReply {
            tenant_id: generation.tenant_id,
            user_id: Some(generation.user_id),
            agent_id: generation.agent_id,
            conversation_id: generation.conversation_id,
            message_id: generation.message_id,
            provider: generation.provider_kind,
            model: &generation.request.model,
            content: &content,
            status: MessageStatus::Completed,
            finish_reason: cached.finish_reason,
            usage: Some(&cached.usage),
            cost_micros: no_cost,
            estimated: cached.estimated,
            reply: EarlierSteps {
                usage: Some(cached.usage),
                cost_micros: no_cost,
                estimated: cached.estimated,
            },
            error: None,
            response_cache: Some(ResponseCacheLookup::Hit),
        },
    )
    .await?;
    if !closed {
        warn!("reply was closed by the maintenance sweep before the cached reply was stored");
    }
    let tenant_id = TenantId::new(generation.tenant_id);
    budget::settle(platform, tenant_id, generation.message_id, None, no_cost).await;
    info!(
        input_tokens = cached.usage.input_tokens,
        output_tokens = cached.usage.output_tokens,
        "reply served from the response cache"
    );
    Ok(MessageOutcome {
        content,
        status: MessageStatus::Completed,
        finish_reason: cached.finish_reason,
        input_tokens: Some(cached.usage.input_tokens),
        output_tokens: Some(cached.usage.output_tokens),
        cost_micros: no_cost,
        usage_estimated: cached.estimated,
        error: None,
    })
}

/// Splits `text` at the byte offsets where the provider's deltas ended.
pub(crate) fn split_deltas(text: &str, delta_ends: &[usize]) -> Vec<String> {
    let mut deltas = Vec::with_capacity(delta_ends.len());
    let mut start = 0;
    for &end in delta_ends {
        if let Some(delta) = text.get(start..end) {
            deltas.push(delta.to_owned());
        }
        start = end;
    }
    deltas
}

#[cfg(test)]
mod tests {
    use providers::{ChatMessage, ToolCall, ToolDefinition};

    use super::*;

    fn base_request() -> ChatRequest {
        ChatRequest {
            model: "gpt-4o-mini".into(),
            system: Some("Be brief.".into()),
            messages: vec![ChatMessage::user("Hello")],
            temperature: Some(0.5),
            max_tokens: Some(100),
            stop: vec!["END".into()],
            tools: vec![ToolDefinition {
                name: "current_time".into(),
                description: "Returns the time.".into(),
                parameters: json!({ "type": "object" }),
            }],
        }
    }

    #[test]
    fn key_changes_with_each_field() {
        let tenant = Uuid::now_v7();
        let base = request_hash(tenant, ProviderKind::OpenAi, &base_request());
        assert_eq!(
            base,
            request_hash(tenant, ProviderKind::OpenAi, &base_request()),
            "the same request gives the same key"
        );

        type Change = fn(&mut ChatRequest);
        let changes: [(&str, Change); 12] = [
            ("model", |r| r.model = "gpt-4o".into()),
            ("system", |r| r.system = Some("Be verbose.".into())),
            ("no system", |r| r.system = None),
            ("temperature", |r| r.temperature = Some(0.6)),
            ("max_tokens", |r| r.max_tokens = Some(101)),
            ("stop", |r| r.stop = vec!["STOP".into()]),
            ("tool name", |r| r.tools[0].name = "calculate".into()),
            ("tool description", |r| {
                r.tools[0].description = "Time.".into()
            }),
            ("tool parameters", |r| {
                r.tools[0].parameters = json!({ "type": "object", "properties": {} })
            }),
            ("message content", |r| r.messages[0].content = "Hi".into()),
            ("message role", |r| {
                r.messages[0] = ChatMessage::assistant("Hello")
            }),
            ("history", |r| {
                r.messages
                    .insert(0, ChatMessage::assistant("Earlier reply"))
            }),
        ];
        for (field, change) in changes {
            let mut request = base_request();
            change(&mut request);
            let changed = request_hash(tenant, ProviderKind::OpenAi, &request);
            assert_ne!(changed, base, "changing {field} must change the key");
        }
    }

    #[test]
    fn key_changes_with_tool_calls_and_results() {
        let tenant = Uuid::now_v7();
        let mut request = base_request();
        let call = ToolCall {
            id: "call_0".into(),
            name: "current_time".into(),
            arguments: json!({}),
        };
        request
            .messages
            .push(ChatMessage::assistant_tool_calls("", vec![call.clone()]));
        request
            .messages
            .push(ChatMessage::tool_result("call_0", "current_time", "12:00"));
        let base = request_hash(tenant, ProviderKind::OpenAi, &request);

        let mut other_arguments = request.clone();
        other_arguments.messages[1].tool_calls[0].arguments = json!({ "zone": "UTC" });
        let mut other_result = request.clone();
        other_result.messages[2].content = "13:00".into();
        for (case, changed) in [("arguments", other_arguments), ("result", other_result)] {
            let hash = request_hash(tenant, ProviderKind::OpenAi, &changed);
            assert_ne!(hash, base, "changing the tool {case} must change the key");
        }
    }

    #[test]
    fn key_changes_with_tenant_and_provider() {
        let tenant = Uuid::now_v7();
        let base = request_hash(tenant, ProviderKind::OpenAi, &base_request());
        let other_tenant = request_hash(Uuid::now_v7(), ProviderKind::OpenAi, &base_request());
        let other_provider = request_hash(tenant, ProviderKind::Groq, &base_request());
        assert_ne!(other_tenant, base, "another tenant must get another key");
        assert_ne!(
            other_provider, base,
            "another provider must get another key"
        );
    }

    #[test]
    fn key_is_lowercase_hex_sha256() {
        let hash = request_hash(Uuid::now_v7(), ProviderKind::OpenAi, &base_request());
        assert_eq!(hash.len(), 64);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn deltas_split_at_stream_boundaries() {
        let deltas = split_deltas("Hello, world", &[5, 7, 12]);
        assert_eq!(deltas, ["Hello", ", ", "world"]);
    }
}
