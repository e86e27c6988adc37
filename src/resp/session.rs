//! What a RESP connection keeps between its commands.

/// One client's state: everything but the socket and the buffers, which
/// the event loop owns.
pub struct Session {
    /// The connection's number, for `CLIENT ID`.
    pub id: u64,
    /// Set by `CLIENT SETNAME` or `HELLO ... SETNAME`.
    pub name: Option<Vec<u8>>,
    /// `QUIT` was received: close once the replies are written.
    pub quit: bool,
    /// Gave PROXY_PASSWORD (`AUTH`, `HELLO ... AUTH`); unused without one.
    pub authenticated: bool,
}

impl Session {
    /// A fresh session for connection `id`.
    pub fn new(id: u64) -> Session {
        Session {
            id,
            name: None,
            quit: false,
            authenticated: false,
        }
    }
}
