//! `nuggetnet bench connect`: many concurrent telnet sessions held at the login prompt.

/// Command-line arguments.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Address of a running BBS's telnet listener.
    #[arg(long, default_value = "127.0.0.1:2323")]
    pub addr: std::net::SocketAddr,
    /// How many sessions to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
}

/// Runs the load.
pub async fn run(_args: ConnectArgs) -> std::io::Result<()> {
    Ok(())
}
