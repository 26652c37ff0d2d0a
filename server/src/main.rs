//! `xuncha-server`: the sync server and supervisor dashboard.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use xuncha_server::{AppState, app, demo};

/// Xuncha (巡查) server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "XUNCHA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the SQLite database (and later photos).
    #[arg(long, env = "XUNCHA_DATA", default_value = "./data")]
    data: PathBuf,
    /// Fill an empty database with demo data first.
    #[arg(long)]
    demo: bool,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("xuncha-server: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.data)?;
    let db = args.data.join("xuncha.sqlite3");
    if args.demo {
        let empty = xuncha_core::store::Store::open(&db)?.op_count()? == 0;
        if empty {
            let n = demo::seed(&db, 60, chrono::Utc::now().timestamp_millis())?;
            println!("演示数据已写入 / demo data written: 60 premises, {n} inspections");
        } else {
            println!("数据库已有数据，未写入演示数据 / database not empty, demo data not added");
        }
    }
    let state = AppState::open(&args.data)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "巡查服务器 / Xuncha server: http://{}/  (data: {})",
        listener.local_addr()?,
        args.data.display()
    );
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
