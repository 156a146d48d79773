//! TCP: [`TcpStream`] and [`TcpListener`], std's API on green sockets.

mod listener;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use stream::TcpStream;
