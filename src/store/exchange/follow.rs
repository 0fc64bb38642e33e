//! Waking event followers on PostgreSQL: LISTEN on the exchange's channel. The notification
//! is only a wake-up; followers then read the events table from the last sequence they saw.

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::NOTIFY_CHANNEL;
use crate::store::StoreError;

/// A LISTEN connection.
pub struct Waker {
    listener: PgListener,
}

impl Waker {
    /// Connects to the PostgreSQL server at `url` and listens on the exchange's channel.
    pub async fn listen(url: &str) -> Result<Waker, StoreError> {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(Waker { listener })
    }

    /// Waits for a notification or until `timeout` passes. Extra notifications only cause an
    /// extra read of the events table, so none needs to be drained.
    pub async fn wait(&mut self, timeout: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(timeout, self.listener.recv()).await {
            Err(_elapsed) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(_)) => Ok(()),
        }
    }
}
