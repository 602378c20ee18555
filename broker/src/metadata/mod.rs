//! Cluster metadata: topics, their ids, configs and partition counts, and
//! producer-id blocks, kept as records in the `__cluster_metadata` raft
//! group (KRaft's place for them, so there is no ZooKeeper).
//!
//! - [`records`]: what a metadata record says and how it is stored.
//! - [`image`]: the state the records add up to, as readers see it.
//! - [`store`]: the group, the image, and the controller's write path.

pub mod image;
pub mod records;
pub mod store;

pub use image::{MetadataImage, TopicImage};
pub use records::{MetadataRecord, TopicId};
pub use store::{MetadataError, MetadataStore};
