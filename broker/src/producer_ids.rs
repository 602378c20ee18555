//! Producer ids for InitProducerId: handed out from blocks the controller
//! allocates in the metadata log (Kafka's `ProducerIdsBlock`, 1000 ids a
//! block), so no id is ever given twice, across restarts too.

use crate::metadata::{MetadataError, MetadataRecord, MetadataStore};

const BLOCK_SIZE: i64 = 1000;

/// Owned by the broker; the block in hand is behind an async lock.
pub struct ProducerIds {
    node_id: i32,
    block: tokio::sync::Mutex<(i64, i64)>,
}

impl ProducerIds {
    pub fn new(node_id: i32) -> Self {
        Self { node_id, block: tokio::sync::Mutex::new((0, 0)) }
    }

    /// The next unused producer id, allocating a block when the one in hand is spent.
    pub async fn next(&self, metadata: &MetadataStore) -> Result<i64, MetadataError> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let node_id = self.node_id;
            let (_, (first, next)) = metadata
                .write(|image| {
                    let (first, next) = (image.next_producer_id, image.next_producer_id + BLOCK_SIZE);
                    Ok::<_, MetadataError>((vec![MetadataRecord::ProducerIds { broker: node_id, first, next }], (first, next)))
                })
                .await?;
            *block = (first, next);
        }
        let id = block.0;
        block.0 += 1;
        debug_assert!(block.0 <= block.1);
        Ok(id)
    }
}
