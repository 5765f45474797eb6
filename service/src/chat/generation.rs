//! One reply being generated: provider stream to Redis Stream, then the final database write.

use std::time::{Duration, Instant};

use entity::{FinishReason, MessageStatus, ResponseCacheLookup};
use futures_util::StreamExt;
use providers::{
    ChatMessage, ChatProvider, ChatRequest, EventStream, ProviderError, ProviderKind,
    ResponseAccumulator, StreamEvent, ToolCall, Usage, pricing,
};
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use uuid::Uuid;

use super::ResolvedProvider;
use super::{
    budget,
    events::{self, MessageOutcome},
    fallback::Fallback,
    persist, recovery,
    response_cache::{self, CacheSlot, CachedReply},
};
use crate::{
    Platform, RequestContext, TenantId,
    credentials::EndpointOwner,
    error::{ServiceError, ServiceResult},
    jobs::CountUsage,
    live::Change,
    metrics, prices, provider_health,
    tools::{
        ToolSet,
        calls::{self, CallOwner},
    },
};

/// Inputs of a generation, which runs after the request that started it has ended.
pub struct Generation {
    /// The request that sent the message, carried into the jobs the generation enqueues.
    pub request_id: String,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub agent_id: Option<Uuid>,
    pub conversation_id: Uuid,
    /// The member the conversation belongs to.
    pub owner_id: Option<Uuid>,
    pub message_id: Uuid,
    pub provider_kind: ProviderKind,
    pub request: ChatRequest,
    /// Provider and model opened when `provider_kind` fails to open its stream.
    pub fallback: Option<Fallback>,
    /// The agent's tools, when it has any; the reply then loops through tool calls.
    pub tools: Option<GenerationTools>,
    /// The cache slot that the reply was looked up in and is stored in once complete, or
    /// `None` when the response cache is off for it.
    pub response_cache: Option<CacheSlot>,
    /// The cached reply the lookup found, replayed without a provider call.
    pub cached_reply: Option<CachedReply>,
}

/// The tools a reply may call and the rights they run with.
pub struct GenerationTools {
    pub set: ToolSet,
    /// The member who sent the message; task tools act with their role.
    pub ctx: RequestContext,
    /// Model calls the reply may make.
    pub max_steps: i32,
}

/// Usage and cost of the model calls of a reply before its last one, which already have
/// their usage records.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EarlierSteps {
    pub usage: Option<Usage>,
    pub cost_micros: Option<i64>,
    pub estimated: bool,
}

impl EarlierSteps {
    pub(crate) fn add(&mut self, usage: Option<&Usage>, cost_micros: Option<i64>, estimated: bool) {
        if let Some(usage) = usage {
            let total = self.usage.get_or_insert_with(Usage::default);
            total.input_tokens += usage.input_tokens;
            total.output_tokens += usage.output_tokens;
            total.cached_input_tokens = match (total.cached_input_tokens, usage.cached_input_tokens)
            {
                (None, None) => None,
                (left, right) => Some(left.unwrap_or(0) + right.unwrap_or(0)),
            };
        }
        if let Some(cost) = cost_micros {
            *self.cost_micros.get_or_insert(0) += cost;
        }
        self.estimated |= estimated;
    }
}

/// Spawns the generation on the runtime. It runs to the end even when no client listens,
/// unless `GENERATION_WITHOUT_LISTENER=stop`: then it stops, like a user's stop, once nobody
/// has followed it for `LISTENER_GRACE_SECONDS`.
pub fn start(platform: Platform, generation: Generation, provider: ResolvedProvider) {
    let span = info_span!(
        "generation",
        tenant.id = %generation.tenant_id,
        message.id = %generation.message_id,
        provider = generation.provider_kind.as_str(),
        model = %generation.request.model,
    );
    let handle = platform.generations.register(generation.message_id);
    tokio::spawn(
        async move {
            let _running = metrics::generation_running();
            let message_id = generation.message_id;
            let watcher = (!platform.settings.realtime.generate_without_listener).then(|| {
                tokio::spawn(stop_when_unfollowed(
                    platform.clone(),
                    message_id,
                    handle.stop.clone(),
                ))
            });
            let result = run(&platform, &generation, &provider, &handle.stop).await;
            if let Some(watcher) = watcher {
                watcher.abort();
            }
            if let Err(error) = result {
                error!(%error, "storing the generated reply failed");
            }
            platform.generations.remove(message_id);
            handle.finished.cancel();
        }
        .instrument(span),
    );
}

/// Stops the reply `message_id` once no subscriber has marked it as followed for the
/// listener grace period, counted from the start.
async fn stop_when_unfollowed(platform: Platform, message_id: Uuid, stop: CancellationToken) {
    let grace = platform.settings.realtime.listener_grace;
    let key = events::listener_key(&platform.redis, message_id);
    let check_every = (grace / 2).max(Duration::from_millis(100));
    let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + grace, check_every);
    loop {
        checks.tick().await;
        let followed = async {
            let mut connection = platform.redis.shared().await?;
            redis::AsyncCommands::exists::<_, bool>(&mut connection, &key).await
        }
        .await;
        match followed {
            Ok(true) => {}
            Ok(false) => {
                info!(
                    grace_seconds = grace.as_secs_f64(),
                    "nobody follows the reply; stopping it"
                );
                stop.cancel();
                return;
            }
            // Without Redis there is no telling; the reply goes on.
            Err(error) => warn!(%error, "checking for a reply's subscribers failed"),
        }
    }
}

/// The text and usage gathered from the provider, and why the stream ended.
struct Collected {
    text: String,
    usage: Option<Usage>,
    finish_reason: Option<providers::FinishReason>,
    error: Option<ProviderError>,
    cancelled: bool,
    /// Whether the stop came from this process shutting down rather than from a user.
    interrupted: bool,
    /// Whether the provider accepted the request, so that it may bill for it.
    started: bool,
    /// Whether the fallback was called in place of the primary provider.
    fallback_used: bool,
    /// Outcomes to record in the providers' health, as provider and success.
    health: Vec<(ProviderKind, bool)>,
    /// Tool calls the model asked for, when the stream ended normally.
    tool_calls: Vec<ToolCall>,
    /// Byte offsets in `text` where each streamed delta ended.
    delta_ends: Vec<usize>,
}

impl Collected {
    fn empty() -> Self {
        Self {
            text: String::new(),
            usage: None,
            finish_reason: None,
            error: None,
            cancelled: false,
            interrupted: false,
            started: false,
            fallback_used: false,
            health: Vec::new(),
            tool_calls: Vec::new(),
            delta_ends: Vec::new(),
        }
    }
}

/// Gives every call an id that is unique within its step. Gemini and Ollama send none, and
/// tool executions are keyed by it.
pub(crate) fn normalise_call_ids(calls: Vec<ToolCall>) -> Vec<ToolCall> {
    let mut seen = std::collections::HashSet::new();
    calls
        .into_iter()
        .enumerate()
        .map(|(index, mut call)| {
            if call.id.is_empty() || !seen.insert(call.id.clone()) {
                call.id = format!("call_{index}");
                seen.insert(call.id.clone());
            }
            call
        })
        .collect()
}

async fn run(
    platform: &Platform,
    generation: &Generation,
    provider: &ResolvedProvider,
    stop: &CancellationToken,
) -> ServiceResult<()> {
    let _alive = recovery::keep_alive(platform, generation.message_id);
    let publisher = events::Publisher::new(platform, generation.message_id);
    if let Some(cached) = &generation.cached_reply {
        let outcome = response_cache::replay(platform, generation, &publisher, cached).await?;
        announce_end(platform, generation, &publisher, &outcome, Vec::new()).await;
        return Ok(());
    }
    // A reply's lookup is marked on its first usage record, so each lookup counts once.
    // NOTE: a miss whose reply writes no usage record (the provider never accepted the
    // request) is missing from the hit rate.
    let mut cache_lookup = generation
        .response_cache
        .as_ref()
        .map(|_| ResponseCacheLookup::Miss);
    let mut request = generation.request.clone();
    // The first call's budget was reserved under the message's id when it was sent.
    let mut reservation = generation.message_id;
    let mut earlier = EarlierSteps::default();
    let mut text = String::new();
    let mut health = Vec::new();
    let mut step = 1;
    let outcome = loop {
        let mut collected =
            collect(platform, generation, &request, provider, stop, &publisher).await;
        health.extend(collected.health.iter().copied());
        let calls = std::mem::take(&mut collected.tool_calls);
        let tools = generation.tools.as_ref().filter(|_| !calls.is_empty());
        let limit = tools.filter(|tools| step >= tools.max_steps).map(|tools| {
            format!(
                "the agent reached its limit of {} steps without a final answer",
                tools.max_steps
            )
        });
        let Some(tools) = tools.filter(|_| limit.is_none()) else {
            // Only the reply of a single model call that called no tools is cached.
            let cacheable = generation.response_cache.as_ref().filter(|_| {
                step == 1
                    && calls.is_empty()
                    && !collected.fallback_used
                    && !collected.cancelled
                    && collected.error.is_none()
            });
            let deltas = cacheable
                .map(|_| response_cache::split_deltas(&collected.text, &collected.delta_ends));
            let outcome = finish(
                platform,
                generation,
                &request,
                reservation,
                collected,
                &text,
                earlier,
                limit,
                cache_lookup.take(),
            )
            .await?;
            if let (Some(slot), Some(deltas)) = (cacheable, deltas) {
                response_cache::store(platform, slot, deltas, &outcome).await;
            }
            break outcome;
        };

        // The step asked for tools: store its usage now, run the calls, and call the
        // model again with their results.
        let (usage, cost_micros, estimated) =
            step_usage(platform, generation, &request, &collected).await;
        if let Some(usage) = &usage {
            let (provider, model) = served_by(generation, &request, &collected);
            let call = persist::CallUsage {
                tenant_id: generation.tenant_id,
                user_id: Some(generation.user_id),
                agent_id: generation.agent_id,
                conversation_id: generation.conversation_id,
                message_id: generation.message_id,
                provider,
                model,
                usage,
                cost_micros,
                estimated,
                response_cache: cache_lookup.take(),
            };
            persist::record_call_usage(platform, &call).await?;
        }
        budget::settle(
            platform,
            TenantId::new(generation.tenant_id),
            reservation,
            usage.as_ref(),
            cost_micros,
        )
        .await;
        earlier.add(usage.as_ref(), cost_micros, estimated);
        text.push_str(&collected.text);
        let owner = CallOwner::Message(generation.message_id);
        let running = calls::run_step(
            platform, &tools.ctx, &tools.set, owner, step, &calls, &publisher,
        );
        let results = tokio::select! {
            results = running => results?,
            () = stop.cancelled() => {
                let reason = "the reply was stopped while the call ran";
                calls::abandon_started(platform, tools.ctx.tenant_id, owner, reason).await?;
                let mut stopped = Collected::empty();
                stopped.cancelled = true;
                stopped.interrupted = platform.generations.is_interrupting();
                break finish(
                    platform,
                    generation,
                    &request,
                    reservation,
                    stopped,
                    &text,
                    earlier,
                    None,
                    cache_lookup.take(),
                )
                .await?;
            }
        };
        request
            .messages
            .push(ChatMessage::assistant_tool_calls(collected.text, calls));
        request.messages.extend(results);
        step += 1;

        reservation = Uuid::now_v7();
        if let Err(error) = reserve_step(platform, generation, &request, reservation).await {
            let reason = format!("the next model call was not made: {error}");
            break finish(
                platform,
                generation,
                &request,
                reservation,
                Collected::empty(),
                &text,
                earlier,
                Some(reason),
                cache_lookup.take(),
            )
            .await?;
        }
    };
    announce_end(platform, generation, &publisher, &outcome, health).await;
    Ok(())
}

/// Publishes the reply's final event and live change, records the providers' health and
/// queues the count of its usage, once the reply's final state is stored.
async fn announce_end(
    platform: &Platform,
    generation: &Generation,
    publisher: &events::Publisher,
    outcome: &MessageOutcome,
    health: Vec<(ProviderKind, bool)>,
) {
    publisher.finish(outcome).await;
    let change = Change::MessageCompleted {
        message_id: generation.message_id,
        conversation_id: generation.conversation_id,
        owner_id: generation.owner_id,
        status: outcome.status,
    };
    platform.live.tenant(generation.tenant_id, change);

    // Recorded after the final write and on its own task, so that it never delays a reply.
    for (kind, ok) in health {
        provider_health::spawn_record_outcome(platform, kind, ok);
    }

    platform
        .jobs
        .count_usage(CountUsage {
            tenant_id: generation.tenant_id,
            request_id: Some(generation.request_id.clone()),
        })
        .await;
}

/// Reserves the budget of a further model call of a reply that called tools.
async fn reserve_step(
    platform: &Platform,
    generation: &Generation,
    request: &ChatRequest,
    reservation: Uuid,
) -> ServiceResult<()> {
    let tenant_id = TenantId::new(generation.tenant_id);
    let api_key = generation
        .tools
        .as_ref()
        .and_then(|tools| tools.ctx.key_payer());
    // The reply was admitted, so a later call waits for room in a per-minute limit, up to
    // a minute, rather than failing the reply.
    let mut waited = Duration::ZERO;
    loop {
        let txn = platform.tenant_tx(tenant_id).await?;
        let reserved = budget::reserve_for(
            platform,
            &txn,
            tenant_id,
            api_key,
            generation.provider_kind,
            budget::Demand::Call(request),
            reservation,
        )
        .await;
        txn.commit().await?;
        match reserved {
            Err(ServiceError::RateLimited {
                retry_after_seconds,
                ..
            }) if waited < MAX_STEP_WAIT => {
                let wait = Duration::from_secs(retry_after_seconds).min(MAX_STEP_WAIT - waited);
                tokio::time::sleep(wait).await;
                waited += wait;
            }
            reserved => return reserved.map(|_| ()),
        }
    }
}

/// Reads the provider stream, publishing each text delta as it arrives.
async fn collect(
    platform: &Platform,
    generation: &Generation,
    request: &ChatRequest,
    provider: &ResolvedProvider,
    stop: &CancellationToken,
    publisher: &events::Publisher,
) -> Collected {
    let mut collected = Collected::empty();
    let mut tool_call_parts = ResponseAccumulator::new();
    let mut serving = (generation.provider_kind, provider.owner);
    let mut model = request.model.as_str();
    let mut opened_at = Instant::now();
    let mut opened = open(provider.adapter.as_ref(), request, stop).await;
    // Any failure to open, after its retries, switches to the agent's fallback.
    if let Opened::Failed(error) = &opened
        && let Some(fallback) = &generation.fallback
        && let Some((reopened, fallback_owner)) = fallback
            .open(platform, generation, request, error, stop)
            .await
    {
        collected
            .health
            .extend(health_outcome(serving, Some(error)));
        metrics::provider_call(serving.0, model, error.code(), opened_at.elapsed());
        serving = (fallback.provider_kind, fallback_owner);
        model = fallback.model.as_str();
        // The fallback's own call starts where the primary's failure was recorded.
        opened_at = Instant::now();
        opened = reopened;
        collected.fallback_used = true;
    }
    let mut stream = match opened {
        Opened::Stream(stream) => stream,
        Opened::Failed(error) => {
            collected
                .health
                .extend(health_outcome(serving, Some(&error)));
            metrics::provider_call(serving.0, model, error.code(), opened_at.elapsed());
            collected.error = Some(error);
            return collected;
        }
        Opened::Stopped => {
            collected.cancelled = true;
            collected.interrupted = platform.generations.is_interrupting();
            return collected;
        }
    };
    collected.started = true;

    loop {
        let event = tokio::select! {
            biased;
            () = stop.cancelled() => {
                collected.cancelled = true;
                collected.interrupted = platform.generations.is_interrupting();
                break;
            }
            event = stream.next() => event,
        };
        match event {
            Some(Ok(StreamEvent::TextDelta(text))) => {
                if collected.text.is_empty() {
                    metrics::provider_first_token(serving.0, model, opened_at.elapsed());
                }
                publisher.delta(&text).await;
                collected.text.push_str(&text);
                collected.delta_ends.push(collected.text.len());
            }
            Some(Ok(StreamEvent::Usage(usage))) => collected.usage = Some(usage),
            Some(Ok(StreamEvent::Finish(reason))) => collected.finish_reason = Some(reason),
            Some(Ok(event @ StreamEvent::ToolCallDelta { .. })) => tool_call_parts.push(&event),
            Some(Err(error)) => {
                collected.error = Some(error);
                break;
            }
            None => break,
        }
    }
    let outcome = match (&collected.error, collected.cancelled) {
        (_, true) => "cancelled",
        (Some(error), false) => error.code(),
        (None, false) => "ok",
    };
    metrics::provider_call(serving.0, model, outcome, opened_at.elapsed());
    if collected.error.is_none() && !collected.cancelled {
        collected.tool_calls = normalise_call_ids(tool_call_parts.into_response().tool_calls);
    }
    // A stopped reply shows nothing about the provider.
    if !collected.cancelled {
        collected
            .health
            .extend(health_outcome(serving, collected.error.as_ref()));
    }
    collected
}

/// Returns the health outcome of a call to `provider`, or `None` when the call shows nothing
/// about it: a tenant's own credential was used, or the request itself caused the error.
fn health_outcome(
    (provider, owner): (ProviderKind, EndpointOwner),
    error: Option<&ProviderError>,
) -> Option<(ProviderKind, bool)> {
    if owner == EndpointOwner::Tenant {
        return None;
    }
    match error {
        None => Some((provider, true)),
        Some(error) if error.is_caused_by_request() => None,
        Some(_) => Some((provider, false)),
    }
}

/// Error of a reply cut off because its process shut down after the grace period.
const SHUT_DOWN: &str = "the server shut down before the reply finished";

/// Provider calls made to open one stream, the first included.
const OPEN_ATTEMPTS: u32 = 3;
/// Maximum wait for room in a per-minute limit before a further model call of a reply.
const MAX_STEP_WAIT: Duration = Duration::from_secs(60);
/// Delay before the first retry; it doubles with each further attempt.
const RETRY_BASE_DELAY: Duration = Duration::from_millis(250);
/// Longest wait before a retry. A provider asking for longer fails the reply at once.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(10);

/// How opening the provider stream ended.
pub(crate) enum Opened {
    Stream(EventStream),
    Failed(ProviderError),
    Stopped,
}

/// Opens the provider stream, retrying faults worth retrying (rate limited, overloaded,
/// unavailable, timeout) with exponential backoff and jitter. Retries happen only here,
/// before any token reached a subscriber.
pub(crate) async fn open(
    provider: &dyn ChatProvider,
    request: &ChatRequest,
    stop: &CancellationToken,
) -> Opened {
    let mut attempt = 1;
    loop {
        let result = tokio::select! {
            biased;
            () = stop.cancelled() => return Opened::Stopped,
            result = provider.stream(request) => result,
        };
        let error = match result {
            Ok(stream) => return Opened::Stream(stream),
            Err(error) => error,
        };
        let delay = retry_delay(attempt, error.retry_after());
        let Some(delay) = delay.filter(|_| error.is_retryable() && attempt < OPEN_ATTEMPTS) else {
            return Opened::Failed(error);
        };
        warn!(%error, attempt, delay_ms = delay.as_millis() as u64, "provider call failed, retrying");
        tokio::select! {
            biased;
            () = stop.cancelled() => return Opened::Stopped,
            () = tokio::time::sleep(delay) => {}
        }
        attempt += 1;
    }
}

/// Returns the wait before retry number `attempt`: the backoff with up to 50% jitter, or
/// the provider's requested delay when longer, or `None` when that exceeds the maximum.
fn retry_delay(attempt: u32, requested: Option<Duration>) -> Option<Duration> {
    let backoff = RETRY_BASE_DELAY.saturating_mul(2u32.saturating_pow(attempt - 1));
    let jitter_ms = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
    let delay = (backoff + Duration::from_millis(jitter_ms)).max(requested.unwrap_or_default());
    (delay <= RETRY_MAX_DELAY).then_some(delay)
}

/// Returns the usage of one model call, estimated from the text when the provider sent
/// none, its cost (`None` when the model's price is unknown), and whether it was estimated.
/// Records the usage in the metrics.
async fn step_usage(
    platform: &Platform,
    generation: &Generation,
    request: &ChatRequest,
    collected: &Collected,
) -> (Option<Usage>, Option<i64>, bool) {
    // A provider that accepted the request may bill for it even when the stream ended early,
    // so missing usage is estimated from the text instead of recorded as zero.
    let (usage, estimated) = match collected.usage {
        Some(usage) => (Some(usage), false),
        None if collected.started || !collected.text.is_empty() => {
            (Some(estimate_usage(request, &collected.text)), true)
        }
        None => (None, false),
    };
    let (provider_kind, model) = served_by(generation, request, collected);
    // A model missing from the price table gets no cost rather than a cost of zero.
    let tenant_id = TenantId::new(generation.tenant_id);
    let price = prices::lookup_or_platform(platform, tenant_id, provider_kind, model).await;
    let cost_micros = usage
        .as_ref()
        .zip(price.as_ref())
        .map(|(usage, price)| pricing::cost_micros(price, usage));
    if usage.is_some() && price.is_none() {
        warn!("no price known for this model, usage recorded with unknown cost");
    }
    if let Some(usage) = &usage {
        metrics::provider_usage(
            provider_kind,
            model,
            usage.input_tokens,
            usage.output_tokens,
            cost_micros,
        );
    }
    (usage, cost_micros, estimated)
}

/// Returns the provider and model that served the call: the fallback's when it was used.
fn served_by<'a>(
    generation: &'a Generation,
    request: &'a ChatRequest,
    collected: &Collected,
) -> (ProviderKind, &'a str) {
    match &generation.fallback {
        Some(fallback) if collected.fallback_used => (fallback.provider_kind, &fallback.model),
        _ => (generation.provider_kind, &request.model),
    }
}

/// Writes the final message and the last call's usage record in one transaction. The
/// message's text and usage include the earlier calls of a reply that called tools.
/// `limit` is set when the reply ends because a limit stopped further calls.
/// `cache_lookup` is stored on the usage record when the last call has one.
#[allow(clippy::too_many_arguments)]
async fn finish(
    platform: &Platform,
    generation: &Generation,
    request: &ChatRequest,
    reservation: Uuid,
    collected: Collected,
    earlier_text: &str,
    earlier: EarlierSteps,
    limit: Option<String>,
    cache_lookup: Option<ResponseCacheLookup>,
) -> ServiceResult<MessageOutcome> {
    let (status, finish_reason) = match (&collected.error, collected.cancelled, &limit) {
        (_, true, _) if collected.interrupted => (MessageStatus::Interrupted, FinishReason::Error),
        (_, true, _) => (MessageStatus::Completed, FinishReason::Cancelled),
        (Some(_), false, _) | (None, false, Some(_)) => {
            (MessageStatus::Failed, FinishReason::Error)
        }
        (None, false, None) => (
            MessageStatus::Completed,
            collected
                .finish_reason
                .map(finish_reason_of)
                .unwrap_or(FinishReason::Other),
        ),
    };
    if let Some(error) = &collected.error {
        warn!(%error, "provider stream failed");
    }

    let (usage, cost_micros, estimated) =
        step_usage(platform, generation, request, &collected).await;
    let mut reply = earlier;
    reply.add(usage.as_ref(), cost_micros, estimated);
    let (provider_kind, model) = served_by(generation, request, &collected);
    let error_text = if collected.interrupted {
        Some(SHUT_DOWN.to_owned())
    } else {
        collected
            .error
            .as_ref()
            .map(ProviderError::to_string)
            .or(limit)
    };
    let content = format!("{earlier_text}{}", collected.text);
    let closed = persist::close_message(
        platform,
        persist::ClosedReply {
            tenant_id: generation.tenant_id,
            user_id: Some(generation.user_id),
            agent_id: generation.agent_id,
            conversation_id: generation.conversation_id,
            message_id: generation.message_id,
            provider: provider_kind,
            model,
            content: &content,
            status,
            finish_reason,
            usage: usage.as_ref(),
            cost_micros,
            estimated,
            reply,
            error: error_text.as_deref(),
            response_cache: cache_lookup,
        },
    )
    .await?;
    if !closed {
        warn!("reply was closed by the maintenance sweep before the generation finished");
    }
    // After a sweep closed the reply, its reservation is already settled and this is a no-op.
    let tenant_id = TenantId::new(generation.tenant_id);
    budget::settle(
        platform,
        tenant_id,
        reservation,
        usage.as_ref(),
        cost_micros,
    )
    .await;
    info!(
        status = ?status,
        finish_reason = ?finish_reason,
        input_tokens = reply.usage.as_ref().map(|usage| usage.input_tokens),
        output_tokens = reply.usage.as_ref().map(|usage| usage.output_tokens),
        cost_micros = reply.cost_micros,
        "generation finished"
    );

    Ok(MessageOutcome {
        content,
        status,
        finish_reason,
        input_tokens: reply.usage.as_ref().map(|usage| usage.input_tokens),
        output_tokens: reply.usage.as_ref().map(|usage| usage.output_tokens),
        cost_micros: reply.cost_micros,
        usage_estimated: reply.estimated,
        error: error_text,
    })
}

/// Estimates usage from the request and the text received, for streams cut before the
/// provider reported its counts.
pub(crate) fn estimate_usage(request: &ChatRequest, text: &str) -> Usage {
    let system = request
        .system
        .as_deref()
        .map(pricing::estimate_tokens)
        .unwrap_or(0);
    let input: i64 = request
        .messages
        .iter()
        .map(|message| pricing::estimate_tokens(&message.content))
        .sum();
    Usage {
        input_tokens: system + input,
        output_tokens: pricing::estimate_tokens(text),
        cached_input_tokens: None,
        reasoning_tokens: None,
    }
}

pub(crate) fn finish_reason_of(reason: providers::FinishReason) -> FinishReason {
    match reason {
        providers::FinishReason::Stop => FinishReason::Stop,
        providers::FinishReason::Length => FinishReason::Length,
        providers::FinishReason::ToolCalls => FinishReason::ToolCalls,
        providers::FinishReason::ContentFilter => FinishReason::ContentFilter,
        providers::FinishReason::Error => FinishReason::Error,
        providers::FinishReason::Other => FinishReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_made_unique() {
        let call = |id: &str| ToolCall {
            id: id.to_owned(),
            name: "f".to_owned(),
            arguments: serde_json::json!({}),
        };
        let calls = normalise_call_ids(vec![call(""), call("a"), call("a")]);
        let ids: Vec<&str> = calls.iter().map(|call| call.id.as_str()).collect();
        assert_eq!(ids, ["call_0", "a", "call_2"]);
    }

    #[test]
    fn retry_delay_doubles_with_jitter() {
        for attempt in 1..=3 {
            let backoff = RETRY_BASE_DELAY * 2u32.pow(attempt - 1);
            let delay = retry_delay(attempt, None).unwrap();
            assert!(delay >= backoff, "attempt {attempt}: {delay:?}");
            assert!(delay <= backoff * 3 / 2, "attempt {attempt}: {delay:?}");
        }
    }

    #[test]
    fn retry_delay_honours_provider_request() {
        let delay = retry_delay(1, Some(Duration::from_secs(7))).unwrap();
        assert_eq!(delay, Duration::from_secs(7));
    }

    #[test]
    fn retry_delay_beyond_maximum_gives_up() {
        assert_eq!(retry_delay(1, Some(Duration::from_secs(60))), None);
    }
}
