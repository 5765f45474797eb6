//! The bounded buffer between a subscription's reader of Redis and its client.
//!
//! A reader waits for room in the buffer for at most `SUBSCRIBER_STALL_SECONDS`. A client
//! that leaves the buffer full longer than that is too slow. Its subscription then ends,
//! after the events already buffered, with an error naming the cursor of the last of them.
//! The client can subscribe again from there without a gap.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{Stream, StreamExt, stream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Platform,
    error::{ServiceError, ServiceResult},
};

/// The reader's half of a subscription's buffer.
pub(crate) struct EventSender<T> {
    sender: mpsc::Sender<ServiceResult<T>>,
    stall: Duration,
    /// Cursor of the last event put in the buffer.
    cursor: String,
    /// Set when the client was too slow; read once the buffer has been drained.
    overflow: Arc<Mutex<Option<String>>>,
}

/// The reader stopped sending: the client left, or was too slow.
#[derive(Debug)]
pub(crate) struct Stopped;

/// Creates a subscription's buffer, of `SUBSCRIPTION_BUFFER` events, whose stream starts
/// after `cursor`.
pub(crate) fn buffer<T: Send + 'static>(
    platform: &Platform,
    cursor: &str,
) -> (
    EventSender<T>,
    impl Stream<Item = ServiceResult<T>> + Send + use<T>,
) {
    let settings = &platform.settings.realtime;
    bounded(
        settings.subscription_buffer,
        settings.subscriber_stall,
        cursor,
    )
}

fn bounded<T: Send + 'static>(
    capacity: usize,
    stall: Duration,
    cursor: &str,
) -> (
    EventSender<T>,
    impl Stream<Item = ServiceResult<T>> + Send + use<T>,
) {
    let (sender, receiver) = mpsc::channel(capacity);
    let overflow = Arc::new(Mutex::new(None));
    let after_overflow = overflow.clone();
    let ending = stream::once(async move {
        let resume_after = after_overflow.lock().ok()?.take()?;
        Some(Err(ServiceError::SubscriberTooSlow { resume_after }))
    })
    .filter_map(std::future::ready);
    let sender = EventSender {
        sender,
        stall,
        cursor: cursor.to_owned(),
        overflow,
    };
    (sender, ReceiverStream::new(receiver).chain(ending))
}

impl<T> EventSender<T> {
    /// Buffers `event`, whose cursor is `cursor`, waiting for room at most the stall time.
    pub(crate) async fn send(&mut self, event: T, cursor: &str) -> Result<(), Stopped> {
        match tokio::time::timeout(self.stall, self.sender.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(Ok(event));
                cursor.clone_into(&mut self.cursor);
                Ok(())
            }
            Ok(Err(_)) => Err(Stopped),
            Err(_) => {
                if let Ok(mut overflow) = self.overflow.lock() {
                    *overflow = Some(self.cursor.clone());
                }
                Err(Stopped)
            }
        }
    }

    /// Ends the subscription with `error`, after the events already buffered.
    pub(crate) async fn fail(&self, error: ServiceError) {
        let _ = tokio::time::timeout(self.stall, self.sender.send(Err(error))).await;
    }

    /// Returns whether the client has gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_millis(20);

    #[tokio::test]
    async fn a_client_that_keeps_up_gets_every_event_and_no_error() {
        let (mut sender, events) = bounded::<u32>(2, STALL, "0-0");
        let reader = tokio::spawn(async move { events.collect::<Vec<_>>().await });
        for n in 1..=10 {
            sender.send(n, &format!("{n}-0")).await.unwrap();
        }
        drop(sender);
        let received: Vec<u32> = reader
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(received, (1..=10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_stalled_client_gets_the_buffered_events_then_the_cursor_to_resume_from() {
        let (mut sender, events) = bounded::<u32>(2, STALL, "0-0");
        sender.send(1, "1-0").await.unwrap();
        sender.send(2, "2-0").await.unwrap();
        assert!(sender.send(3, "3-0").await.is_err());
        drop(sender);

        let received: Vec<_> = events.collect().await;
        assert_eq!(received.len(), 3);
        assert_eq!(*received[0].as_ref().unwrap(), 1);
        assert_eq!(*received[1].as_ref().unwrap(), 2);
        match &received[2] {
            Err(ServiceError::SubscriberTooSlow { resume_after }) => {
                assert_eq!(resume_after, "2-0")
            }
            other => panic!("expected SubscriberTooSlow, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_client_stalled_before_the_first_event_resumes_from_the_start() {
        let (mut sender, events) = bounded::<u32>(1, STALL, "5-0");
        sender.send(6, "6-0").await.unwrap();
        assert!(sender.send(7, "7-0").await.is_err());
        drop(sender);
        let received: Vec<_> = events.skip(1).collect().await;
        assert!(matches!(
            &received[..],
            [Err(ServiceError::SubscriberTooSlow { resume_after })] if resume_after == "6-0"
        ));

        let (mut sender, events) = bounded::<u32>(1, STALL, "5-0");
        drop(events);
        assert!(sender.send(6, "6-0").await.is_err());
        assert!(sender.is_closed());
    }
}
