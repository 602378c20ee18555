//! Client tools and the `bench` load generator. Empty until issue 10 lands: nothing here pretends to work.
