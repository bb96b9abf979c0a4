//! JSON-RPC over a Unix socket (06 §4.2): one connection per request, frames of a 4-byte
//! little-endian length followed by that many bytes of JSON.

use std::path::PathBuf;
use std::time::Duration;

use super::{Ids, parse_response, request};
use crate::providers::Answer;
use crate::retry::Failure;
use crate::types::CompletionRequest;

/// Largest inbound frame.
pub(crate) const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// A Unix-socket JSON-RPC backend.
#[derive(Debug)]
pub(crate) struct UnixRpc {
    pub path: PathBuf,
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub connect_timeout: Duration,
    pub ids: Ids,
}

impl UnixRpc {
    /// One request/response exchange on a fresh connection.
    pub(crate) async fn attempt(&self, completion: &CompletionRequest) -> Result<Answer, Failure> {
        let id = self.ids.next();
        let model = self.model.as_deref().unwrap_or(completion.model_class.as_str());
        let frame = request(id, model, completion, self.max_tokens).to_string().into_bytes();
        let reply = self.exchange(&frame).await?;
        parse_response(&reply, id)
    }

    #[cfg(unix)]
    async fn exchange(&self, frame: &[u8]) -> Result<Vec<u8>, Failure> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let mut stream = self.connect().await?;
        let length =
            u32::try_from(frame.len()).map_err(|_| Failure::fatal("intelligence request too large for one frame"))?;
        let write = async {
            stream.write_all(&length.to_le_bytes()).await?;
            stream.write_all(frame).await?;
            stream.flush().await
        };
        write.await.map_err(|e| Failure::fatal(format!("write request: {e}")))?;
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).await.map_err(|e| Failure::fatal(format!("read response: {e}")))?;
        let length = u32::from_le_bytes(header);
        if length > MAX_FRAME {
            return Err(Failure::fatal(format!("intelligence frame too large: {length} bytes > {MAX_FRAME}")));
        }
        let mut body = vec![0u8; length as usize];
        stream.read_exact(&mut body).await.map_err(|e| Failure::fatal(format!("read response: {e}")))?;
        Ok(body)
    }

    /// Connects; a missing socket or a refused connection is retryable (06 §6), other errors not.
    #[cfg(unix)]
    async fn connect(&self) -> Result<tokio::net::UnixStream, Failure> {
        use std::io::ErrorKind;

        let display = self.path.display();
        let connect = tokio::net::UnixStream::connect(&self.path);
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                Err(Failure::transient(format!("unix socket {display}: connect: {e}")))
            }
            Ok(Err(e)) => Err(Failure::fatal(format!("unix socket {display}: connect: {e}"))),
            Err(_) => Err(Failure::transient(format!("unix socket {display}: connect timed out"))),
        }
    }

    #[cfg(not(unix))]
    async fn exchange(&self, _frame: &[u8]) -> Result<Vec<u8>, Failure> {
        Err(Failure::fatal("Unix sockets are not supported on this platform"))
    }
}
