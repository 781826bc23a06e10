//! HTTP/1.1 (RFC 9110, RFC 9112) as sans-IO state machines.

mod decode;
mod encode;
mod error;
mod framing;
mod head;
mod scan;
mod server;

pub use error::{H1Error, SendError};
pub use framing::BodyFraming;
pub use head::{RequestHead, ResponseHead, TargetForm};
pub use server::{BodySize, ReadStatus, ServerConnection, ServerEvent};
