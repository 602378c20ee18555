//! The Kafka front end of the `fjord` broker. Empty until issue 5 lands: nothing here pretends to work.
