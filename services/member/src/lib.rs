//! The member service (issue 5). So far: how personal data is protected. Profiles store
//! names, phones, emails and ID numbers sealed with a per-tenant data key ([`vault`]), find
//! members by them through keyed blind indexes ([`blind`]), and show them masked unless the
//! caller may see them ([`mask`]).

pub mod blind;
pub mod facts;
pub mod mask;
pub mod profile;
pub mod rfm;
pub mod service;
pub mod store;
pub mod tier;
pub mod vault;
