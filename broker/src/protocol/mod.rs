//! Wire-level pieces that the kafka-protocol crate does not do for a broker:
//! framing with size caps, header parsing that survives unknown keys, and
//! the hand-made Fetch response that keeps record bytes zero-copy.

pub mod decode_all;
pub mod fetch_response;
pub mod frame;
pub mod records;
pub mod vectored;
