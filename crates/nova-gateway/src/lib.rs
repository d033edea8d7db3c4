//! nova-gateway
