//! Raft replication of partition logs with openraft. Empty until issue 4 lands: nothing here pretends to work.
