//! nova-app
