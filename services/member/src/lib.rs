//! The member service: profiles with their personal data sealed per tenant ([`vault`]),
//! found through keyed blind indexes ([`blind`]) and masked unless the caller may see them
//! ([`mask`]), and listed by birthday through a keyed index of its month and day
//! ([`birthday`]); the non-personal facts segments, tiers and scores read ([`facts`],
//! [`segment`], [`tier`], [`rfm`]); orders ([`orders`]); an event for every change
//! ([`events`]); and the `member.v1` gRPC API ([`grpc`], its access checks in [`grpc_access`]).

pub mod birthday;
pub mod blind;
pub mod client;
pub mod events;
pub mod facts;
pub mod grpc;
pub mod grpc_access;
pub mod ledger;
pub mod mask;
pub mod orders;
pub mod profile;
pub mod rfm;
pub mod schema;
pub mod segment;
pub mod service;
pub mod store;
pub mod tier;
pub mod vault;
