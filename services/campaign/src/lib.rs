//! The campaign service: coupon templates ([`template`]), codes ([`code`]) and the coupons
//! issued from them ([`coupon`]), a cart evaluated at the till against every coupon a
//! member holds or presents ([`cart`]), redemptions held at checkout, redeemed and undone
//! ([`service`]), an event for every change ([`events`]), and the `campaign.v1` gRPC API
//! ([`grpc`], its access checks in [`grpc_access`]).

pub mod campaign;
pub mod cart;
pub mod client;
pub mod code;
pub mod coupon;
pub mod draw;
pub mod events;
pub mod grpc;
pub mod grpc_access;
pub mod mall;
pub mod referral;
pub mod sale;
pub mod schema;
pub mod service;
pub mod store;
pub mod template;
pub mod trigger_feed;
