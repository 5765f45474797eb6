//! Sending messages, stopping generation, and the subscription that streams a reply.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use service::chat::{self, MessageEvent, MessageOutcome};

use super::{
    agent_runs::ToolExecutionStatus,
    context::{caller, parse_id, platform},
    conversations::{FinishReason, Message, MessageStatus},
    error::{GqlResult, to_graphql_error},
    rate_headers,
    scalars::BigInt,
};

#[derive(InputObject)]
pub struct SendMessageInput {
    pub conversation_id: ID,
    /// The user's message, up to 100,000 characters.
    pub content: String,
    /// Response cache for this reply: true looks it up and stores it (with the agent's
    /// `responseCacheTtlSeconds`, or else the platform's `RESPONSE_CACHE_TTL_SECONDS`),
    /// false bypasses the cache, and null follows the agent's setting.
    pub cache: Option<bool>,
}

#[derive(SimpleObject)]
pub struct SendMessagePayload {
    pub user_message: Message,
    /// The reply, in state STREAMING; follow it with `messageStream(messageId: ...)`.
    pub assistant_message: Message,
}

#[derive(InputObject)]
pub struct StopGenerationInput {
    /// The assistant message whose generation should stop.
    pub message_id: ID,
}

#[derive(SimpleObject)]
pub struct StopGenerationPayload {
    /// The message after stopping; its text so far and its usage are kept.
    pub message: Message,
}

/// Kind of a reply stream event.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum MessageEventKind {
    /// A piece of generated text.
    Delta,
    /// The agent's model asked for a tool call, which is about to run; see `toolCall`.
    ToolCall,
    /// A tool call ended; see `toolResult`.
    ToolResult,
    /// The reply ended; `outcome` contains the full text, usage, cost and finish reason.
    Done,
}

/// The final state of a reply.
#[derive(SimpleObject)]
pub struct MessageOutcomeObject {
    pub content: String,
    pub status: MessageStatus,
    pub finish_reason: FinishReason,
    pub input_tokens: Option<BigInt>,
    pub output_tokens: Option<BigInt>,
    /// Cost in micro-dollars.
    pub cost_micros: Option<BigInt>,
    pub usage_estimated: bool,
    pub error: Option<String>,
}

/// One event of a streamed reply.
#[derive(SimpleObject)]
pub struct MessageStreamEvent {
    /// Pass as `after` to resume the stream right after this event.
    pub cursor: String,
    pub kind: MessageEventKind,
    /// The new text, for DELTA events.
    pub delta: Option<String>,
    /// The call, for TOOL_CALL events.
    pub tool_call: Option<ReplyToolCall>,
    /// The call's outcome, for TOOL_RESULT events.
    pub tool_result: Option<ReplyToolResult>,
    /// The final state, for the DONE event.
    pub outcome: Option<MessageOutcomeObject>,
}

/// A tool call made while generating a reply.
#[derive(SimpleObject)]
pub struct ReplyToolCall {
    /// The model call that asked for it, starting at 1.
    pub step: i32,
    pub call_id: String,
    pub name: String,
    pub arguments: Json<Value>,
}

/// The end of a tool call made while generating a reply.
#[derive(SimpleObject)]
pub struct ReplyToolResult {
    pub step: i32,
    pub call_id: String,
    pub name: String,
    pub status: ToolExecutionStatus,
    /// The tool's output, as the model read it.
    pub result: Option<String>,
    pub error: Option<String>,
}

impl From<MessageOutcome> for MessageOutcomeObject {
    fn from(outcome: MessageOutcome) -> Self {
        Self {
            content: outcome.content,
            status: outcome.status.into(),
            finish_reason: outcome.finish_reason.into(),
            input_tokens: outcome.input_tokens.map(BigInt),
            output_tokens: outcome.output_tokens.map(BigInt),
            cost_micros: outcome.cost_micros.map(BigInt),
            usage_estimated: outcome.usage_estimated,
            error: outcome.error,
        }
    }
}

impl MessageStreamEvent {
    fn empty(cursor: String, kind: MessageEventKind) -> Self {
        Self {
            cursor,
            kind,
            delta: None,
            tool_call: None,
            tool_result: None,
            outcome: None,
        }
    }
}

impl From<MessageEvent> for MessageStreamEvent {
    fn from(event: MessageEvent) -> Self {
        match event {
            MessageEvent::Delta { cursor, text } => Self {
                delta: Some(text),
                ..Self::empty(cursor, MessageEventKind::Delta)
            },
            MessageEvent::ToolCall { cursor, call } => Self {
                tool_call: Some(ReplyToolCall {
                    step: call.step,
                    call_id: call.call_id,
                    name: call.name,
                    arguments: Json(call.arguments),
                }),
                ..Self::empty(cursor, MessageEventKind::ToolCall)
            },
            MessageEvent::ToolResult { cursor, result } => Self {
                tool_result: Some(ReplyToolResult {
                    step: result.step,
                    call_id: result.call_id,
                    name: result.name,
                    status: result.status.into(),
                    result: result.result,
                    error: result.error,
                }),
                ..Self::empty(cursor, MessageEventKind::ToolResult)
            },
            MessageEvent::Done { cursor, outcome } => Self {
                outcome: Some(outcome.into()),
                ..Self::empty(cursor, MessageEventKind::Done)
            },
        }
    }
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Stores the message and starts generating the reply, returning at once. The reply
    /// is generated and stored even if no client follows it. Needs the member role.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<SendMessagePayload> {
        let conversation_id = parse_id("conversationId", &input.conversation_id)?;
        let sent = chat::send_message(
            platform(ctx),
            caller(ctx)?,
            conversation_id,
            &input.content,
            input.cache,
        )
        .await;
        rate_headers::set_for(ctx, &sent, |sent| &sent.rate);
        let sent = sent.gql()?;
        Ok(SendMessagePayload {
            user_message: sent.user_message.into(),
            assistant_message: sent.assistant_message.into(),
        })
    }

    /// Stops a reply being generated. Needs the member role.
    async fn stop_generation(
        &self,
        ctx: &Context<'_>,
        input: StopGenerationInput,
    ) -> async_graphql::Result<StopGenerationPayload> {
        let message_id = parse_id("messageId", &input.message_id)?;
        let message = chat::stop_generation(platform(ctx), caller(ctx)?, message_id)
            .await
            .gql()?;
        Ok(StopGenerationPayload {
            message: message.into(),
        })
    }
}

#[derive(Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// Streams a reply: its text deltas and, for an agent with tools, its tool calls and
    /// results as they happen, then one DONE event. A subscriber that starts late
    /// receives the events it missed first; `after` resumes from an event's cursor.
    async fn message_stream(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<MessageStreamEvent>> + use<>>
    {
        let message_id = parse_id("messageId", &message_id)?;
        let events = chat::subscribe(platform(ctx), caller(ctx)?, message_id, after)
            .await
            .gql()?;
        Ok(events.map(|event| {
            event
                .map(MessageStreamEvent::from)
                .map_err(to_graphql_error)
        }))
    }
}
