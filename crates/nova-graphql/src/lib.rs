//! nova-graphql
