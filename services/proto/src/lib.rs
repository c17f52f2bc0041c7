//! Generated types and gRPC stubs for the platform's versioned protobuf packages, and the
//! transport service clients call each other over.

pub mod transport;

/// `ledger.v1`: points and stored value.
pub mod ledger {
    pub mod v1 {
        tonic::include_proto!("ledger.v1");
    }
}

/// `identity.v1`: authentication, authorization and audit for services without the
/// identity store.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("identity.v1");
    }
}

/// `member.v1`: member profiles, orders, activity, erasure, segments and merges.
pub mod member {
    pub mod v1 {
        tonic::include_proto!("member.v1");
    }
}

/// `events.v1`: the schema of the events published to partners (JSON on the wire).
pub mod events {
    pub mod v1 {
        tonic::include_proto!("events.v1");
    }
}

/// Encoded `FileDescriptorSet` of every package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
